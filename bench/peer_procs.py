"""One side of a Python ↔ Python data-channel measurement, in its own process.

    python -m bench.peer_procs send|recv --server URL --room ROOM --mode emit|file
        [--mb 100] [--file PATH] [--output DIR] [--loop uvloop|asyncio]

``send`` waits for the other side and for the WebRTC upgrade, then emits
``--mb`` MB as 64 KiB binary messages (``emit``) or sends ``--file``
(``file``, until the receiver confirmed its SHA-256). ``recv`` counts the
messages or saves the file, answers ``bench-done`` and leaves after the sender. Each side prints one
JSON line: its wall time and its own CPU seconds (user + system) over the
transfer only, so connection setup and imports are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from peer import Peer, ReceivedFile
from peer.cli import _wait_for_receiver, _wait_for_upgrade

MESSAGE = 64 * 1024


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """Wall and CPU time from ``start()`` to ``stop()``."""

    def __init__(self) -> None:
        self.wall0 = self.cpu0 = 0.0
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.wall0, self.cpu0 = time.perf_counter(), cpu_now()

    def stop(self, role: str, size: int) -> dict[str, Any]:
        return {"role": role, "bytes": size, "seconds": time.perf_counter() - self.wall0,
                "cpu_s": cpu_now() - self.cpu0}


async def send(args: argparse.Namespace) -> dict[str, Any]:
    async with Peer(args.server, args.room, meta={"role": "sender"}) as peer:
        other = (await _wait_for_receiver(peer)).peer_id
        await _wait_for_upgrade(peer, other, 20)
        if peer.transport(other) != "webrtc":
            raise RuntimeError("the data channel did not open within 20 s")
        done = asyncio.get_running_loop().create_future()
        peer.on("bench-done", lambda _s, _d: None if done.done() else done.set_result(None))
        window = Window()
        window.start()
        if args.mode == "emit":
            total = args.mb * 1000 * 1000
            block = os.urandom(MESSAGE)
            for _ in range(-(-total // MESSAGE)):
                await peer.emit("blob", block, to=other)
            size = -(-total // MESSAGE) * MESSAGE
        else:
            await peer.send_file(other, args.file)
            size = args.file.stat().st_size
        await asyncio.wait_for(done, 600)
        return window.stop("send", size)


async def recv(args: argparse.Namespace) -> dict[str, Any]:
    total = args.mb * 1000 * 1000
    window = Window()
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[dict[str, Any]] = loop.create_future()
    received = 0
    peer = Peer(args.server, args.room, meta={"role": "receiver"}, download_dir=args.output)

    def on_blob(_sender: str, data: bytes) -> None:
        nonlocal received
        window.start()
        received += len(data)
        if received >= total and not finished.done():
            finished.set_result(window.stop("recv", received))

    def on_file(_sender: str, got: ReceivedFile) -> None:
        if not finished.done():
            finished.set_result(window.stop("recv", got.size) | {"sha256": got.sha256})

    peer.on("blob", on_blob)
    peer.on("file-progress", lambda _s, _p: window.start())
    peer.on("file", on_file)
    async with peer:
        result = await asyncio.wait_for(finished, 600)
        sender = next(iter(peer.peers))
        left = loop.create_future()
        peer.on("peer-left", lambda _id, _reason: None if left.done() else left.set_result(None))
        await peer.emit("bench-done", None, to=sender)
        # Stay until the sender has it and leaves: a peer that closes at once
        # may take its last unacked message with it.
        await asyncio.wait_for(left, 60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=["send", "recv"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--mode", choices=["emit", "file"], default="emit")
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--file", type=Path)
    parser.add_argument("--output", type=Path, default=Path("."))
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    coro = send(args) if args.role == "send" else recv(args)
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
