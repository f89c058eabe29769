"""L8 load: Python Peers (aiortc data channels) exchanging numbered 16 KiB messages.

    python -m bench.soak_peers --url URL --pairs 4 --mb 5 [--loss-mb 2]

``pairs`` pairs of Peers in this process, each side emitting ``mb`` MB of
16 KiB binary messages to the other at once; every receiver checks the
sequence numbers (in order, none twice) and the SHA-256 of the whole stream.
Then, with ``--loss-mb``, the same again on fresh pairs with the F9 lossy
shim (5 % loss, 30 ms delay, 5 % reorder) under every datagram but STUN.
ICE runs on loopback only. Prints ``{"mark": ...}`` lines and one
``{"result": {...}}`` line, as ``bench/soak_load.py`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import struct
import sys
import time
from typing import Any

from peer import Peer
from tests.reliability.support import LossyLink, loopback_ice, until

SIZE = 16 * 1024


def mark(name: str, **extra: Any) -> None:
    print(json.dumps({"mark": name, **extra}), flush=True)


class Stream:
    """What one receiver got from one sender."""

    def __init__(self) -> None:
        self.count = 0
        self.duplicates = 0
        self.reorders = 0
        self.digest = hashlib.sha256()
        self.last = -1

    def add(self, data: bytes) -> None:
        seq = struct.unpack("!I", data[:4])[0]
        if seq <= self.last:
            if seq == self.last:
                self.duplicates += 1
            else:
                self.reorders += 1
            return
        self.last = seq
        self.count += 1
        self.digest.update(data)


async def run_pairs(url: str, pairs: int, mb: float, room_prefix: str) -> list[dict[str, Any]]:
    count = max(1, int(mb * 1024 * 1024 // SIZE))
    peers: list[tuple[Peer, Peer]] = []
    streams: dict[tuple[int, str], Stream] = {}
    for index in range(pairs):
        a, b = Peer(url, f"{room_prefix}-{index}"), Peer(url, f"{room_prefix}-{index}")
        for side, peer in (("a", a), ("b", b)):
            stream = streams[(index, side)] = Stream()
            peer.on("blob", lambda _sender, data, s=stream: s.add(data))
        peers.append((a, b))
    transfers: list[dict[str, Any]] = []
    try:
        for a, b in peers:
            await a.connect()
            await b.connect()
        for a, b in peers:
            await until(lambda a=a, b=b: b.id in a.peers and a.id in b.peers
                        and a.transport(b.id) == "webrtc" and b.transport(a.id) == "webrtc",
                        timeout=30)
        sent_digests: dict[tuple[int, str], str] = {}

        async def send(index: int, side: str, source: Peer, target: Peer) -> None:
            digest = hashlib.sha256()
            for seq in range(count):
                blob = struct.pack("!I", seq) + os.urandom(SIZE - 4)
                digest.update(blob)
                await source.emit("blob", blob, to=target.id)
            sent_digests[(index, "b" if side == "a" else "a")] = digest.hexdigest()

        started = time.monotonic()
        await asyncio.gather(*(send(i, side, src, dst)
                               for i, (a, b) in enumerate(peers)
                               for side, src, dst in (("a", a, b), ("b", b, a))))
        await until(lambda: all(s.count >= count for s in streams.values()), timeout=300)
        took = time.monotonic() - started
        for (index, side), stream in sorted(streams.items()):
            transfers.append({
                "pair": index, "receiver": side, "messages": stream.count, "expected": count,
                "duplicates": stream.duplicates, "reorders": stream.reorders,
                "sha256_ok": stream.digest.hexdigest() == sent_digests[(index, side)],
                "transport": peers[index][0].transport(peers[index][1].id),
            })
        total_mb = 2 * pairs * count * SIZE / 1024 / 1024
        transfers.append({"total_mb": round(total_mb, 1), "seconds": round(took, 1),
                          "mb_per_s": round(total_mb / took, 2)})
    finally:
        for a, b in peers:
            await a.close()
            await b.close()
    return transfers


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    url = args.urls[0]
    clean = await run_pairs(url, args.pairs, args.mb, "l8")
    mark("clean-done")
    result: dict[str, Any] = {"scenario": "aiortc", "pairs": args.pairs, "mb_each_way": args.mb,
                              "clean": clean}
    lossy: list[dict[str, Any]] = []
    if args.loss_mb:
        with LossyLink(loss=0.05, delay=0.03, reorder=0.05, seed=8).installed() as link:
            lossy = await run_pairs(url, args.pairs, args.loss_mb, "l8loss")
        result["lossy"] = lossy
        result["lossy_link"] = {"dropped": link.dropped, "passed": link.passed,
                                "reordered": link.reordered}
        mark("lossy-done")
    checks = [t for t in clean + lossy if "pair" in t]
    result["transfers"] = len(checks)
    result["ok"] = all(t["messages"] == t["expected"] and t["sha256_ok"]
                       and not t["duplicates"] and not t["reorders"] for t in checks)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", dest="urls", action="append", required=True)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--mb", type=float, default=5)
    p.add_argument("--loss-mb", type=float, default=0)
    args = p.parse_args()
    with loopback_ice():
        try:
            result = asyncio.run(main_async(args))
        except Exception as exc:  # noqa: BLE001 - reported as the result
            result = {"ok": False, "error": repr(exc)}
    print(json.dumps({"result": result}), flush=True)
    mark("all-left")
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
