"""Cross-node relay through Redis against one node, in the same run.

    python -m bench.cluster [--pairs 20] [--seconds 6] [--rate 1000] [--window 8]

Set-ups, each with ``pairs`` sender/receiver pairs (python-socketio
clients in this process, each pair in its own room):

- ``single``: one node, memory backend;
- ``redis-local``: one node on Redis, sender and receiver on it;
- ``cross-node``: two nodes on one Redis, senders on one, receivers on the other.
- ``node-local`` / ``node-cross``: the anchor, Node socket.io 4.8 with
  ``@socket.io/redis-streams-adapter`` (``bench/reference-cluster.mjs``), one
  process and then two on their own Redis, driven the same way (needs
  ``cd bench && npm ci``; ``--no-node-anchor`` skips it).

For each: latency (send to receive, p50/p99) at a fixed total ``rate``, then
throughput with every sender keeping ``window`` relays in flight (with the
nodes' CPU time per relayed message, both nodes together; ``@rate`` is the
same at the fixed rate of the latency phase, an offered load that does not
depend on how fast the machine is at the moment), and the
join-ack latency, and the CPU time of redis-server per relayed message.
``--profile DIR`` samples both nodes with py-spy and saves Redis's
``INFO commandstats`` during the cross-node throughput phase. Servers and redis-server run as subprocesses on loopback
(redis on a free port, no persistence); the load generator is this one
process, so absolute numbers are bounded by it: compare the set-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from .procstat import cpu_seconds
from .profile import Profiler, summarize

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"listening on (http://[\d.]+:\d+)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Any:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            url = f"redis://127.0.0.1:{port}/0"
            PIDS[url] = process.pid
            yield url
        finally:
            process.terminate()
            process.wait(10)


PIDS: dict[str, int] = {}


def node(*flags: str) -> contextlib.AbstractAsyncContextManager[str]:
    """One of our nodes (``python -m signaling``)."""
    return _process(sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0",
                    "--rate-limit", "0", "--rate-limit-bytes", "0", "--log-level", "warning", *flags)


def node_anchor(redis_url: str) -> contextlib.AbstractAsyncContextManager[str]:
    """One Node socket.io process with the Redis streams adapter (``bench/reference-cluster.mjs``)."""
    return _process(shutil.which("node") or "node", str(ROOT / "bench" / "reference-cluster.mjs"),
                    "--host", "127.0.0.1", "--port", "0", "--redis", redis_url)


def node_anchor_ready() -> bool:
    return shutil.which("node") is not None and (
        ROOT / "bench" / "node_modules" / "@socket.io" / "redis-streams-adapter").is_dir()


@contextlib.asynccontextmanager
async def _process(*cmd: str) -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            if not line:
                raise RuntimeError("node did not start")
            match = READY.search(line.decode())
            if match:
                break
        PIDS[match.group(1)] = process.pid
        yield match.group(1)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await process.wait()


@dataclass
class Pair:
    sender: socketio.AsyncClient
    receiver: socketio.AsyncClient
    room: str
    to: str = ""
    latencies: list[float] = field(default_factory=list)
    received: int = 0


async def make_pairs(count: int, send_url: str, recv_url: str, joins: list[float]) -> list[Pair]:
    pairs = []
    for i in range(count):
        sender = socketio.AsyncClient(reconnection=False)
        receiver = socketio.AsyncClient(reconnection=False)
        pair = Pair(sender, receiver, f"bench-{i}")

        def on_relay(payload: dict[str, Any], pair: Pair = pair) -> None:
            pair.received += 1
            pair.latencies.append(time.perf_counter() - payload["data"]["t"])

        receiver.on("relay", on_relay)
        await sender.connect(send_url, transports=["websocket"])
        await receiver.connect(recv_url, transports=["websocket"])
        for client in (sender, receiver):
            started = time.perf_counter()
            ack = await client.call("join", {"room": pair.room}, timeout=10)
            joins.append(time.perf_counter() - started)
            if client is receiver:
                pair.to = ack["peerId"]
        pairs.append(pair)
    return pairs


async def fixed_rate(pairs: list[Pair], rate: float, seconds: float) -> tuple[int, int]:
    interval = len(pairs) / rate
    sent = 0

    async def run(pair: Pair) -> None:
        nonlocal sent
        next_at = time.perf_counter()
        end = next_at + seconds
        while next_at < end:
            await pair.sender.emit("relay", {"room": pair.room, "to": pair.to, "event": "b",
                                             "data": {"t": time.perf_counter(), "pad": "x" * 200}})
            sent += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    await asyncio.gather(*(run(p) for p in pairs))
    await _settle(pairs, sent)
    return sent, sum(p.received for p in pairs)


async def saturate(pairs: list[Pair], window: int, seconds: float) -> tuple[int, float]:
    sent = 0

    async def run(pair: Pair) -> None:
        nonlocal sent
        slots = asyncio.Semaphore(window)
        end = time.perf_counter() + seconds
        pending: set[asyncio.Task[Any]] = set()
        while time.perf_counter() < end:
            await slots.acquire()
            task = asyncio.create_task(pair.sender.call(
                "relay", {"room": pair.room, "to": pair.to, "event": "b",
                          "data": {"t": time.perf_counter(), "pad": "x" * 200}}, timeout=30))
            task.add_done_callback(lambda _t: slots.release())
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.gather(*pending)

    started = time.perf_counter()
    await asyncio.gather(*(run(p) for p in pairs))
    await _settle(pairs, sent)
    elapsed = time.perf_counter() - started
    return sum(p.received for p in pairs), elapsed


async def _settle(pairs: list[Pair], expected: int, timeout: float = 15.0) -> None:
    deadline = time.perf_counter() + timeout
    while sum(p.received for p in pairs) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def scenario(
    name: str, send_url: str, recv_url: str, args: argparse.Namespace, redis_url: str | None = None
) -> dict[str, Any]:
    joins: list[float] = []
    pairs = await make_pairs(args.pairs, send_url, recv_url, joins)
    servers = {PIDS[send_url], PIDS[recv_url]}
    try:
        fixed_before = sum(cpu_seconds(pid) or 0.0 for pid in servers)
        sent, got = await fixed_rate(pairs, args.rate, args.seconds)
        fixed_cpu = sum(cpu_seconds(pid) or 0.0 for pid in servers) - fixed_before
        latencies = [x for p in pairs for x in p.latencies]
        for p in pairs:
            p.latencies.clear()
            p.received = 0
        redis_pid = PIDS.get(redis_url or "")
        cpu_before = sum(cpu_seconds(pid) or 0.0 for pid in servers)
        redis_before = cpu_seconds(redis_pid) or 0.0 if redis_pid else 0.0
        profilers = []
        if args.profile and name == "cross-node":
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            profilers = [(role, Profiler(PIDS[url], out / f"{role}.txt", None))
                         for role, url in (("sender", send_url), ("receiver", recv_url))]
            if redis_url:
                import redis

                redis.Redis.from_url(redis_url).config_resetstat()
        delivered, elapsed = await saturate(pairs, args.window, args.seconds)
        for role, profiler in profilers:
            stacks = profiler.stop()
            if stacks is not None:
                (stacks.parent / f"{role}-summary.txt").write_text(summarize(stacks))
        if redis_url and args.profile and name == "cross-node":
            stats = redis.Redis.from_url(redis_url).info("commandstats")
            lines = [f"{k} calls={v['calls']} usec={v['usec']} per_call={v['usec_per_call']}"
                     for k, v in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])]
            (Path(args.profile) / "redis-commandstats.txt").write_text("\n".join(lines) + "\n")
        cpu = sum(cpu_seconds(pid) or 0.0 for pid in servers) - cpu_before
        redis_cpu = (cpu_seconds(redis_pid) or 0.0) - redis_before if redis_pid else 0.0
    finally:
        for p in pairs:
            await p.sender.disconnect()
            await p.receiver.disconnect()
    return {
        "scenario": name,
        "rate_sent": sent, "rate_received": got,
        "p50_ms": _pct(latencies, 0.5), "p99_ms": _pct(latencies, 0.99),
        "throughput": delivered / elapsed,
        "cpu_us_per_msg": cpu / max(1, delivered) * 1e6,
        "fixed_cpu_us_per_msg": fixed_cpu / max(1, got) * 1e6,
        "redis_us_per_msg": redis_cpu / max(1, delivered) * 1e6,
        "join_p50_ms": statistics.median(joins) * 1000, "join_p99_ms": _pct(joins, 0.99),
    }


async def main(args: argparse.Namespace) -> None:
    results = []
    async with node() as single:
        results.append(await scenario("single", single, single, args))
    with redis_server() as url:
        async with node("--redis-url", url) as one:
            results.append(await scenario("redis-local", one, one, args, url))
            async with node("--redis-url", url) as two:
                results.append(await scenario("cross-node", one, two, args, url))
    if args.node_anchor and node_anchor_ready():
        try:
            with redis_server() as url:
                async with node_anchor(url) as one:
                    results.append(await scenario("node-local", one, one, args, url))
                    async with node_anchor(url) as two:
                        results.append(await scenario("node-cross", one, two, args, url))
        except Exception as exc:  # noqa: BLE001 - our set-ups' results still print
            print(f"node anchor failed: {exc!r}", file=sys.stderr)
    elif args.node_anchor:
        print("node anchor skipped: needs node and `cd bench && npm ci`", file=sys.stderr)
    base = results[0]["throughput"]
    print(f"{'scenario':<12} {'sent':>6} {'recv':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'msg/s':>7} {'ratio':>6} {'us/msg':>7} {'@rate':>6} {'redis us':>8} {'join p50':>9} {'join p99':>9}")
    for r in results:
        print(f"{r['scenario']:<12} {r['rate_sent']:>6} {r['rate_received']:>6} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['throughput']:>7.0f} {r['throughput'] / base:>6.2f} "
              f"{r['cpu_us_per_msg']:>7.0f} {r['fixed_cpu_us_per_msg']:>6.0f} {r['redis_us_per_msg']:>8.1f} "
              f"{r['join_p50_ms']:>9.2f} {r['join_p99_ms']:>9.2f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="total relays/s in the latency phase")
    parser.add_argument("--no-node-anchor", dest="node_anchor", action="store_false",
                        help="skip Node socket.io with the Redis streams adapter")
    parser.add_argument("--profile", metavar="DIR",
                        help="py-spy both nodes and save Redis commandstats during cross-node saturation")
    parser.add_argument("--window", type=int, default=8, help="relays in flight per sender when saturating")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
