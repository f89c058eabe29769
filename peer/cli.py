"""``python -m peer send|receive``: one file between two peers in a room.

    python -m peer send --server URL --room ROOM FILE
    python -m peer receive --server URL --room ROOM --output DIR
    python -m peer record --server URL --room ROOM --output DIR [--duration S]
    python -m peer --version

``send`` waits for a receiver (any peer whose meta ``role`` is not
``"sender"``), sends the file over the data channel when one opens within a
moment (through the server otherwise, switching when it opens), and exits 0
once the receiver confirmed the SHA-256. ``receive`` saves the first file it
gets under its own name in DIR and exits 0. ``record`` is
:mod:`peer.recorder`'s. Progress is a tqdm bar on a
terminal and plain lines otherwise, on stderr; results on stdout; both in
decimal units (MB = 10^6 bytes). Arguments are checked before anything
connects (the URL's scheme, a file that is a file, a directory that is not a
file, positive numbers). A failure exits 1 with one line on stderr (2 for bad
arguments, 130 and ``interrupted`` on Ctrl-C). ``--max-size`` caps the file:
``receive`` refuses a bigger offer (the sender is told why), ``send`` does not
start one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from . import console, recorder
from .errors import FileTransferError, PeerError, PeerGone, SignalingError
from .peer import Peer
from .peer_link import PeerInfo
from .transfers import FileFailed, FileProgress, ReceivedFile

UPGRADE_WAIT = 3.0
"""How long ``send`` gives the data channel to open before starting on the relay."""


DEFAULT_COLUMNS = 80
"""Bar width on a terminal that reports 0 columns (some serial consoles, CI ttys)."""


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


class Progress:
    """A tqdm bar on a terminal, a plain line per 10% otherwise."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self._label = label
        self._total = total
        self._stream = stream
        self._done = 0
        self._next_line = 0
        self._bar: Any = None
        if stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                # Decimal units, as the summary line; a fixed width where the
                # terminal reports none (tqdm would then draw nothing).
                self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True,
                                 unit_divisor=1000, file=stream, leave=True,
                                 ncols=None if _columns(stream) > 0 else DEFAULT_COLUMNS)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._done)
        elif done >= self._next_line or done == self._total:
            percent = 100 if not self._total else done * 100 // self._total
            print(f"{self._label}: {percent}% ({done}/{self._total} bytes)", file=self._stream,
                  flush=True)
            self._next_line = done + max(self._total // 10, 1)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def build_parser() -> argparse.ArgumentParser:
    parser = console.ArgumentParser(prog="python -m peer",
                                    description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s (rtc-signaling) {console.version()}")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=console.ArgumentParser)
    for name, helptext in (("send", "send one file to a receiver"),
                           ("receive", "save the first file received")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--server", required=True, type=console.server_url,
                         help="signaling server URL, e.g. http://127.0.0.1:8080")
        sub.add_argument("--room", required=True, help="room name")
        sub.add_argument("--relay-only", action="store_true",
                         help="behave as a client with no WebRTC (everything via the server)")
        sub.add_argument("--token", help="JWT for a server started with --auth-secret")
        sub.add_argument("--timeout", type=console.positive_seconds, default=None,
                         help="give up after this many seconds (default: wait forever)")
        sub.add_argument("--max-size", type=console.byte_size, default=None,
                         help="largest file, e.g. 500MB or 2GiB (default: no limit)")
        sub.add_argument("-v", "--verbose", action="count", default=0,
                         help="show library logs (-vv: debug)")
        if name == "send":
            sub.add_argument("file", type=Path, help="the file to send")
        else:
            sub.add_argument("--output", type=Path, default=Path("."),
                             help="directory to save into, created if missing (default: .)")
    recorder.add_parser(commands)
    return parser


def check_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One line and exit 2 for a path that cannot work, before connecting."""
    prog = f"{parser.prog} {args.command}"
    if args.command == "send":
        path: Path = args.file
        if path.is_dir():
            _usage_error(prog, f"{path} is a directory; send takes one file")
        if not path.is_file():
            _usage_error(prog, f"no such file: {path}")
        if not os.access(path, os.R_OK):
            _usage_error(prog, f"cannot read {path}: permission denied")
        size = path.stat().st_size
        if args.max_size is not None and size > args.max_size:
            _usage_error(prog, f"{path} is {size} bytes, over --max-size {args.max_size}")
    else:
        output: Path = args.output
        if output.exists() and not output.is_dir():
            _usage_error(prog, f"--output {output} is a file; give a directory")


def _usage_error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


async def send(args: argparse.Namespace) -> int:
    path: Path = args.file
    size = path.stat().st_size
    _status(f"connecting to {args.server}")
    async with Peer(args.server, args.room, meta={"role": "sender"},
                    webrtc=not args.relay_only, token=args.token) as peer:
        _status(f"waiting for a receiver in room {args.room} (as {peer.id})")
        receiver = await _wait_for_receiver(peer)
        print(f"receiver {receiver.peer_id} joined", file=sys.stderr, flush=True)
        if peer.webrtc and receiver.webrtc:
            await _wait_for_upgrade(peer, receiver.peer_id, UPGRADE_WAIT)
        progress = Progress(f"send {path.name}", size, sys.stderr)
        started = time.monotonic()
        try:
            digest = await peer.send_file(receiver.peer_id, path,
                                          on_progress=lambda done, _total: progress.update(done))
        except PeerGone:
            raise CliError("the receiver left before confirming the file") from None
        except FileTransferError as exc:
            raise CliError(str(exc)) from None
        finally:
            progress.close()
        elapsed = max(time.monotonic() - started, 1e-9)
        print(f"sent {path.name} ({size} bytes) to {receiver.peer_id} "
              f"via {peer.transport(receiver.peer_id)} in {elapsed:.2f} s "
              f"({size / elapsed / 1e6:.1f} MB/s), sha256 {digest}")
    return 0


async def receive(args: argparse.Namespace) -> int:
    output: Path = args.output
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[ReceivedFile] = loop.create_future()
    bars: dict[str, Progress] = {}

    # Only the library's own objects count: a remote peer cannot forge them.
    def on_progress(_sender: str, state: object) -> None:
        if not isinstance(state, FileProgress) or state.direction != "receive":
            return
        bar = bars.get(state.id)
        if bar is None:
            bar = bars[state.id] = Progress(f"receive {state.name}", state.size, sys.stderr)
        bar.update(state.done)

    def on_file(_sender: str, received: object) -> None:
        if isinstance(received, ReceivedFile) and not outcome.done():
            outcome.set_result(received)

    def on_file_failed(_sender: str, failed: object) -> None:
        if isinstance(failed, FileFailed) and failed.direction == "receive" and not outcome.done():
            outcome.set_exception(failed.error)

    _status(f"connecting to {args.server}")
    peer = Peer(args.server, args.room, meta={"role": "receiver"},
                webrtc=not args.relay_only, token=args.token, download_dir=output,
                max_file_bytes=args.max_size)
    peer.on("file-progress", on_progress)
    peer.on("file", on_file)
    peer.on("file-failed", on_file_failed)
    async with peer:
        _status(f"waiting in room {args.room} as {peer.id} for a file, to save in {output}")
        try:
            received = await outcome
        finally:
            for bar in bars.values():
                bar.close()
    print(f"received {received.name} ({received.size} bytes), sha256 {received.sha256}, "
          f"saved to {received.path}")
    return 0


async def _wait_for_receiver(peer: Peer) -> PeerInfo:
    arrived: asyncio.Queue[PeerInfo] = asyncio.Queue()
    peer.on("peer-joined",
            lambda _id, info: arrived.put_nowait(info) if isinstance(info, PeerInfo) else None)
    for info in peer.peers.values():
        arrived.put_nowait(info)
    while True:
        info = await arrived.get()
        if info.meta.get("role") != "sender" and info.peer_id in peer.peers:
            return info


async def _wait_for_upgrade(peer: Peer, peer_id: str, timeout: float) -> None:
    upgraded = asyncio.Event()
    peer.on("upgrade", lambda sender, _data: upgraded.set() if sender == peer_id else None)
    if peer.transport(peer_id) == "webrtc":
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(upgraded.wait(), timeout)


class CliError(Exception):
    """A failure worth one line and exit status 1."""


def _status(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "record":
        console.quiet_logging(args.verbose)
        # plain asyncio: its add_signal_handler is what stops the recording cleanly
        return asyncio.run(recorder.record(args))
    check_paths(parser, args)
    command = send if args.command == "send" else receive
    console.quiet_logging(args.verbose)

    async def run() -> int:
        try:
            if args.timeout is None:
                return await command(args)
            try:
                return await asyncio.wait_for(command(args), args.timeout)
            except TimeoutError:
                raise CliError(f"gave up after {args.timeout:g} s") from None
        except SignalingError as exc:
            _fail(f"the server refused: {exc.code}: {exc.message}")
        except (CliError, PeerError, ConnectionError, OSError) as exc:
            _fail(str(exc) or type(exc).__name__)
        return 1

    return console.run_main(run)


def _fail(reason: str) -> None:
    print(f"error: {reason}", file=sys.stderr, flush=True)
