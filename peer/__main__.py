"""``python -m peer send|receive``: see :mod:`peer.cli`."""

import sys

from .cli import main

sys.exit(main())
