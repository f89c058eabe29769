"""``python -m peer send|receive``: see :mod:`peer.cli`."""

import sys

from . import INSTALL_HINT

try:
    from .cli import main
except ModuleNotFoundError as exc:  # the [peer] extra is not installed
    print(f"python -m peer: needs {exc.name}, which is not installed: {INSTALL_HINT}",
          file=sys.stderr)
    sys.exit(1)

sys.exit(main())
