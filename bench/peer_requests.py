"""Peer.request round trips, and the cost of a room key.

    python -m bench.peer_requests [--count 300]

Starts its own signaling server on loopback (``bench.peer_bench``), two
Python Peers in one process, and measures sequential ``request`` round trips
(a plain handler echoing 100 bytes of JSON) over the relay and over the data
channel, with and without a ``secret``; then ``derive_key`` (PBKDF2, 600,000
rounds) once. Prints one line per measurement: p50 and p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from peer import Peer
from peer.sealing import derive_key

from .peer_bench import _upgraded, signaling_server


async def round_trips(url: str, count: int, *, webrtc: bool, secret: str | None) -> list[float]:
    room = f"bench-req-{webrtc}-{secret is not None}"
    a = Peer(url, room, webrtc=webrtc, secret=secret)
    b = Peer(url, room, webrtc=webrtc, secret=secret)
    b.handle("echo", lambda _sender, data: data)
    await a.connect()
    await b.connect()
    try:
        if webrtc:
            await _upgraded(a, b.id)
        payload = {"pad": "x" * 90}
        for _ in range(20):  # warm-up
            await a.request(b.id, "echo", payload)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            await a.request(b.id, "echo", payload)
            times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        await b.close()
        await a.close()


def _line(name: str, times: list[float]) -> str:
    cuts = statistics.quantiles(times, n=100)
    return f"{name:32s} p50 {statistics.median(times):7.2f} ms   p99 {cuts[98]:7.2f} ms"


async def run(count: int) -> None:
    start = time.perf_counter()
    derive_key("bench secret", "bench room")
    print(f"{'derive_key (PBKDF2 600k)':32s} {(time.perf_counter() - start) * 1000:7.0f} ms")
    async with signaling_server() as url:
        for webrtc in (False, True):
            for secret in (None, "bench secret"):
                times = await round_trips(url, count, webrtc=webrtc, secret=secret)
                name = f"request {'webrtc' if webrtc else 'relay'}{' +secret' if secret else ''}"
                print(_line(name, times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    asyncio.run(run(parser.parse_args().count))


if __name__ == "__main__":
    main()
