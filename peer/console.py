"""What every command-line program of the toolkit shares (``python -m peer``, the examples).

- :func:`run_main` runs the program's coroutine (on uvloop when installed) and
  turns Ctrl-C (or SIGTERM) into one line, ``interrupted``, and exit status
  130, after the coroutine's own clean-up ran: no traceback, no hang.
- :class:`ArgumentParser` says what is wrong with an argument in one line
  and exits 2; :func:`server_url`, :func:`positive_seconds` and
  :func:`byte_size` check values before anything connects.
- :func:`quiet_logging`: library logs only with ``-v`` (INFO) or ``-vv``.
- :func:`version`: the installed distribution's version, for ``--version``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

DISTRIBUTION = "rtc-signaling"
INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def version() -> str:
    """The installed ``rtc-signaling`` version, or ``unknown`` from a bare checkout."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with an error as one line (``PROG: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def server_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (argparse ``type=``)."""
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or 0 < parts.port
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise argparse.ArgumentTypeError(
            f"expected a URL like http://127.0.0.1:8080, got {text!r}")
    return text.rstrip("/")


def positive_seconds(text: str) -> float:
    """A number of seconds above zero (argparse ``type=``)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def byte_size(text: str) -> int:
    """A size in bytes above zero: ``1000``, ``500k``, ``20MB`` (10^6), ``1GiB`` (2^30)."""
    match = _SIZE.match(text)
    if match is None or (match.group(3) and not match.group(2)):
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes such as 1000, 500k, 20MB or 1GiB, got {text!r}")
    number, prefix, binary, _ = match.groups()
    base = 1024 if binary else 1000
    value = int(float(number) * base ** _POWERS[prefix.lower()])
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size of at least 1 byte, got {text!r}")
    return value


def quiet_logging(verbose: int) -> None:
    """Library logs (aioice, aiortc, socketio, ...) only when asked: ``-v`` INFO, ``-vv`` DEBUG."""
    level = (logging.CRITICAL + 1 if verbose <= 0
             else logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def run_main(main: Callable[[], Awaitable[int | None]], *, stream: Any = None) -> int:
    """Run ``main()`` to its end; Ctrl-C or SIGTERM cancel it and give 130 and one line.

    The cancellation goes through ``main``'s own ``finally``/``async with``
    blocks, so a Peer leaves its room before the program ends. A second
    Ctrl-C while that clean-up runs cancels it too.
    """
    stream = stream or sys.stderr
    interrupted = False

    async def guarded() -> int:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        signals = (signal.SIGINT, signal.SIGTERM)
        for signum in signals:
            try:
                loop.add_signal_handler(signum, stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            return int(await main() or 0)
        except asyncio.CancelledError:
            if interrupted:
                return INTERRUPTED
            raise
        finally:
            for signum in signals:
                try:
                    loop.remove_signal_handler(signum)
                except (NotImplementedError, RuntimeError):
                    pass

    try:
        try:
            import uvloop
        except ImportError:
            code = asyncio.run(guarded())
        else:
            code = uvloop.run(guarded())
    except KeyboardInterrupt:  # before the handlers were in place, or on Windows
        code = INTERRUPTED
    if code == INTERRUPTED:
        print("interrupted", file=stream, flush=True)
    return code
