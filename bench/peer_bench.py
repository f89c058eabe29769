"""Python peer benchmarks: connect → upgrade latency and throughput.

    python -m bench.peer_bench [--loop uvloop|asyncio] [--mb 100] [--runs 10]

Starts its own signaling server on loopback, then measures, all in this one
process (both peers share the loop, as in the tests):

- ``raw``: two bare aiortc RTCPeerConnections, one reliable ordered channel,
  64 KiB messages with bufferedAmount backpressure: the ceiling of the stack;
- ``connect→upgrade``: a second Peer's ``connect()`` call until its
  ``upgrade`` event (the first Peer already in the room), median of ``--runs``;
- ``emit``: 64 KiB binary messages from one Peer to another on the data channel
  (framing + session + acks), MB/s at the receiver;
- ``file webrtc`` / ``file relay``: ``send_file`` of ``--mb`` MB, until the
  receiver confirmed its SHA-256;
- ``cli``: the same file between ``python -m peer send`` and ``receive`` in
  two processes (uvloop), as the CLI reports it.

Prints one line per measurement and, with ``--json PATH``, writes them there.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection

from peer import Peer, ReceivedFile

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = 64 * 1024


@asynccontextmanager
async def signaling_server() -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", "--log-level", "warning",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            if not line:
                raise RuntimeError("signaling server did not start")
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                break
        yield found.group(1)
    finally:
        process.terminate()
        await process.wait()


async def raw_aiortc(megabytes: int) -> float:
    """MB/s of one bare aiortc channel, in process."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    channel = offerer.createDataChannel("raw")
    received = 0
    total = megabytes * 1000 * 1000
    done = asyncio.Event()
    opened = asyncio.Event()
    channel.on("open", opened.set)

    def on_message(message: bytes) -> None:
        nonlocal received
        received += len(message)
        if received >= total:
            done.set()

    answerer.on("datachannel", lambda remote: remote.on("message", on_message))

    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    await asyncio.wait_for(opened.wait(), 20)
    low = asyncio.Event()
    channel.bufferedAmountLowThreshold = 256 * 1024
    channel.on("bufferedamountlow", low.set)
    block = os.urandom(MESSAGE)
    started = time.perf_counter()
    sent = 0
    while sent < total:
        if channel.bufferedAmount > 1024 * 1024:
            low.clear()
            await low.wait()
        channel.send(block)
        sent += len(block)
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    await offerer.close()
    await answerer.close()
    return total / elapsed / 1e6


async def _upgraded(peer: Peer, other: str) -> None:
    event = asyncio.Event()
    peer.on("upgrade", lambda sender, _d: event.set() if sender == other else None)
    if peer.transport(other) != "webrtc":
        await asyncio.wait_for(event.wait(), 20)


async def connect_to_upgrade(url: str, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        room = f"latency-{run}-{os.getpid()}"
        async with Peer(url, room):
            second = Peer(url, room)
            upgraded = asyncio.Event()
            second.on("upgrade", lambda _s, _d, done=upgraded: done.set())
            started = time.perf_counter()
            await second.connect()
            await asyncio.wait_for(upgraded.wait(), 20)
            times.append(time.perf_counter() - started)
            await second.close()
    return times


async def emit_throughput(url: str, megabytes: int) -> float:
    total = megabytes * 1000 * 1000
    received = 0
    done = asyncio.Event()

    def on_blob(_sender: str, data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received >= total:
            done.set()

    async with Peer(url, "emit") as a, Peer(url, "emit") as b:
        b.on("blob", on_blob)
        await _upgraded(a, b.id)
        block = os.urandom(MESSAGE)
        started = time.perf_counter()
        for _ in range(total // MESSAGE + 1):
            await a.emit("blob", block, to=b.id)
        await asyncio.wait_for(done.wait(), 300)
        return total / (time.perf_counter() - started) / 1e6


async def file_throughput(url: str, path: Path, webrtc: bool, out: Path) -> float:
    size = path.stat().st_size
    room = "file-webrtc" if webrtc else "file-relay"
    async with Peer(url, room, webrtc=webrtc) as a, Peer(url, room, download_dir=out) as b:
        got: asyncio.Future[ReceivedFile] = asyncio.get_running_loop().create_future()
        b.on("file", lambda _s, f: got.set_result(f))
        if webrtc:
            await _upgraded(a, b.id)
        started = time.perf_counter()
        await a.send_file(b.id, path)
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(got, 20)
        return size / elapsed / 1e6


async def cli_throughput(url: str, path: Path, out: Path, relay_only: bool) -> float:
    room = f"cli-{os.getpid()}-{relay_only}"
    flags = ["--server", url, "--room", room] + (["--relay-only"] if relay_only else [])
    python = [sys.executable, "-m", "peer"]
    receiver = await asyncio.create_subprocess_exec(
        *python, "receive", *flags, "--output", str(out), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    sender = await asyncio.create_subprocess_exec(
        *python, "send", *flags, str(path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out_text, _ = await asyncio.wait_for(sender.communicate(), 600)
    await asyncio.wait_for(receiver.wait(), 60)
    found = re.search(r"\(([\d.]+) MB/s\)", out_text.decode())
    if sender.returncode != 0 or found is None:
        raise RuntimeError(f"CLI transfer failed: {out_text.decode()!r}")
    return float(found.group(1))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"loop": args.loop, "mb": args.mb}

    def report(name: str, value: str, key: str, number: Any) -> None:
        results[key] = number
        print(f"{name:<28} {value}", flush=True)

    report("raw aiortc channel", f"{(raw := await raw_aiortc(args.mb)):.1f} MB/s", "raw_mb_s", raw)
    async with signaling_server() as url:
        times = await connect_to_upgrade(url, args.runs)
        median = statistics.median(times) * 1000
        report(f"connect→upgrade (n={args.runs})",
               f"median {median:.0f} ms, min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}",
               "connect_upgrade_ms", [round(t * 1000, 1) for t in times])
        emitted = await emit_throughput(url, args.mb)
        report("emit 64 KiB on webrtc", f"{emitted:.1f} MB/s ({emitted / raw:.2f}x raw)",
               "emit_mb_s", emitted)
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / "bench.bin"
            with source.open("wb") as handle:
                block = os.urandom(1024 * 1024)
                for _ in range(args.mb):
                    handle.write(block[: 1000 * 1000])
            out = Path(scratch) / "out"
            out.mkdir()
            for webrtc in (True, False):
                rate = await file_throughput(url, source, webrtc, out)
                label = "webrtc" if webrtc else "relay"
                report(f"send_file {args.mb} MB {label}", f"{rate:.1f} MB/s", f"file_{label}_mb_s", rate)
                digest = hashlib.sha256(source.read_bytes()).hexdigest()
                assert hashlib.sha256((out / "bench.bin").read_bytes()).hexdigest() == digest
            for relay_only in (False, True):
                rate = await cli_throughput(url, source, out, relay_only)
                label = "relay" if relay_only else "webrtc"
                report(f"CLI 2 processes {label}", f"{rate:.1f} MB/s", f"cli_{label}_mb_s", rate)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runner: Callable[[Any], Any] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    results = runner(run(args))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
