"""``python -m peer send|receive``: one file between two peers in a room.

    python -m peer send --server URL --room ROOM FILE
    python -m peer receive --server URL --room ROOM --output DIR
    python -m peer record --server URL --room ROOM --output DIR [--duration S]

``send`` waits for a receiver (any peer whose meta ``role`` is not
``"sender"``), sends the file over the data channel when one opens within a
moment (through the server otherwise, switching when it opens), and exits 0
once the receiver confirmed the SHA-256. ``receive`` saves the first file it
gets under its own name in DIR and exits 0. ``record`` is :mod:`peer.recorder`'s. Progress is a tqdm bar on a
terminal and plain lines otherwise, on stderr; results on stdout. A failure
exits 1 with one line on stderr (2 for bad arguments, 130 on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO

from . import recorder
from .errors import PeerError, PeerGone, SignalingError
from .peer import Peer
from .peer_link import PeerInfo
from .transfers import FileFailed, FileProgress, ReceivedFile

UPGRADE_WAIT = 3.0
"""How long ``send`` gives the data channel to open before starting on the relay."""


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
                self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True,
                                 unit_divisor=1024, file=stream, leave=True)

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
    parser = argparse.ArgumentParser(prog="python -m peer", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("send", "send one file to a receiver"),
                           ("receive", "save the first file received")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--server", required=True, help="signaling server URL")
        sub.add_argument("--room", required=True, help="room name")
        sub.add_argument("--relay-only", action="store_true",
                         help="behave as a client with no WebRTC (everything via the server)")
        sub.add_argument("--token", help="JWT for a server started with --auth-secret")
        sub.add_argument("--timeout", type=float, default=None,
                         help="give up after this many seconds (default: wait forever)")
        sub.add_argument("-v", "--verbose", action="count", default=0, help="log more")
        if name == "send":
            sub.add_argument("file", type=Path, help="the file to send")
        else:
            sub.add_argument("--output", type=Path, default=Path("."),
                             help="directory to save into (default: .)")
    recorder.add_parser(commands)
    return parser


async def send(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    size = path.stat().st_size
    async with Peer(args.server, args.room, meta={"role": "sender"},
                    webrtc=not args.relay_only, token=args.token) as peer:
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
        finally:
            progress.close()
        elapsed = max(time.monotonic() - started, 1e-9)
        print(f"sent {path.name} ({size} bytes) to {receiver.peer_id} "
              f"via {peer.transport(receiver.peer_id)} in {elapsed:.2f} s "
              f"({size / elapsed / 1e6:.1f} MB/s), sha256 {digest}")
    return 0


async def receive(args: argparse.Namespace) -> int:
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[ReceivedFile] = loop.create_future()
    bars: dict[str, Progress] = {}

    def on_progress(_sender: str, state: FileProgress) -> None:
        bar = bars.get(state.id)
        if bar is None:
            bar = bars[state.id] = Progress(f"receive {state.name}", state.size, sys.stderr)
        bar.update(state.done)

    def on_file(_sender: str, received: ReceivedFile) -> None:
        if not outcome.done():
            outcome.set_result(received)

    def on_file_failed(_sender: str, failed: FileFailed) -> None:
        if not outcome.done():
            outcome.set_exception(failed.error)

    peer = Peer(args.server, args.room, meta={"role": "receiver"},
                webrtc=not args.relay_only, token=args.token, download_dir=output)
    peer.on("file-progress", on_progress)
    peer.on("file", on_file)
    peer.on("file-failed", on_file_failed)
    async with peer:
        print(f"waiting in room {args.room} as {peer.id}", file=sys.stderr, flush=True)
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
    peer.on("peer-joined", lambda _id, info: arrived.put_nowait(info))
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


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@contextlib.contextmanager
def _quiet_logging(verbose: int) -> Iterator[None]:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:  # one line per failure: library chatter only with -v
        logging.getLogger().setLevel(logging.CRITICAL)
    yield


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "record":
        with _quiet_logging(args.verbose):
            # plain asyncio: its add_signal_handler is what stops the recording cleanly
            return asyncio.run(recorder.record(args))
    command = send if args.command == "send" else receive

    async def run() -> int:
        if args.timeout is None:
            return await command(args)
        try:
            return await asyncio.wait_for(command(args), args.timeout)
        except TimeoutError:
            raise CliError(f"gave up after {args.timeout:g} s") from None

    with _quiet_logging(args.verbose):
        try:
            return _run(run())
        except SignalingError as exc:
            _fail(f"the server refused: {exc.code}: {exc.message}")
        except (CliError, PeerError, ConnectionError, OSError) as exc:
            _fail(str(exc) or type(exc).__name__)
        except KeyboardInterrupt:
            _fail("interrupted")
            return 130
    return 1


def _fail(reason: str) -> None:
    print(f"error: {reason}", file=sys.stderr, flush=True)
