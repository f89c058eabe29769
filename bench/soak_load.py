"""Load generator for the soak/load harness (``python -m bench.soak``).

Runs in its own process (at most one core): python-socketio ``AsyncClient``s
against one or more servers. It prints JSON lines on stdout: ``{"mark": NAME}``
at the moments the driver should sample the server, and one final
``{"result": {...}}``.

Every request carries ``{k: sender peerId, n: seq per (sender, receiver),
t: monotonic send time}``. The accounting, per message addressed to one peer:

- ``sent``: requests written;
- ``expected``: acked ``{ok: true, delivered: 1}``: the server handed it on, so
  the receiver must get it (it keeps reading until its own ``leave`` ack);
- ``failed_reported``: the sender saw an error ack, ``delivered: 0`` or an ack
  timeout: a loss the sender knows about;
- ``delivered``: distinct messages that arrived; ``duplicates``; ``reorders``
  (a seq lower than one already seen from that sender);
- ``silent_lost``: expected but never arrived (must be 0);
- ``unacked``: neither acked nor timed out at the end (must be 0: the
  sender-visible outcome is recorded for 100 % of messages).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import socketio

from tests.helpers.clients import disconnect_flushed

ACK_TIMEOUT = 10.0
CONNECT_TIMEOUT = 30.0


def mark(name: str, **extra: Any) -> None:
    print(json.dumps({"mark": name, **extra}), flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 2)  # ms


@dataclass
class Stats:
    sent: int = 0
    expected: set[tuple[str, str, int]] = field(default_factory=set)
    failed_reported: int = 0
    fail_codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    timeouts: int = 0
    received: set[tuple[str, str, int]] = field(default_factory=set)
    duplicates: int = 0
    reorders: int = 0
    last_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency)
    pending: dict[tuple[str, str, int], float] = field(default_factory=dict)
    connect_errors: int = 0
    connect_error_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    join_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unexpected_disconnects: int = 0
    joins: int = 0
    leaves: int = 0
    not_sent_backpressure: int = 0
    misrouted: int = 0
    inflight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def received_message(self, sender: str, receiver: str, seq: int, sent_at: float) -> None:
        key = (sender, receiver, seq)
        if key in self.received:
            self.duplicates += 1
            return
        self.received.add(key)
        pair = (sender, receiver)
        last = self.last_seq.get(pair, -1)
        if seq < last:
            self.reorders += 1
        else:
            self.last_seq[pair] = seq
        self.latencies.append((sent_at, time.monotonic() - sent_at))

    def acked(self, key: tuple[str, str, int], reply: Any) -> None:
        if self.pending.pop(key, None) is None:
            return  # already counted as timed out
        self.inflight[key[0]] -= 1
        if isinstance(reply, dict) and reply.get("ok") and reply.get("delivered", 1) >= 1:
            self.expected.add(key)
        else:
            self.failed_reported += 1
            code = "delivered-0"
            if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
                code = str(reply["error"].get("code"))
            self.fail_codes[code] += 1

    def sweep(self, now: float) -> None:
        stale = [key for key, at in self.pending.items() if now - at > ACK_TIMEOUT]
        for key in stale:
            del self.pending[key]
            self.inflight[key[0]] -= 1
            self.failed_reported += 1
            self.timeouts += 1
            self.fail_codes["ack-timeout"] += 1

    def summary(self, since: float | None = None, until: float | None = None) -> dict[str, Any]:
        lat = [v for at, v in self.latencies
               if (since is None or at >= since) and (until is None or at < until)]
        lost = self.expected - self.received
        return {
            "sent": self.sent,
            "expected": len(self.expected),
            "delivered": len(self.received),
            "failed_reported": self.failed_reported,
            "fail_codes": dict(self.fail_codes),
            "ack_timeouts": self.timeouts,
            "silent_lost": len(lost),
            "unacked": len(self.pending),
            "duplicates": self.duplicates,
            "reorders": self.reorders,
            "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99),
            "max_ms": percentile(lat, 100),
            "connect_errors": self.connect_errors,
            "connect_error_kinds": dict(self.connect_error_kinds),
            "join_errors": dict(self.join_errors),
            "unexpected_disconnects": self.unexpected_disconnects,
            "joins": self.joins,
            "leaves": self.leaves,
            "not_sent_backpressure": self.not_sent_backpressure,
            "misrouted": self.misrouted,
        }


class Client:
    """One AsyncClient in one room, sending tracked requests with acks."""

    def __init__(self, stats: Stats, transports: list[str]) -> None:
        self.stats = stats
        self.transports = transports
        self.sio = socketio.AsyncClient(reconnection=False)
        self.peer_id = ""
        self.room = ""
        self.peers: set[str] = set()
        self.seq: dict[str, int] = defaultdict(int)
        self.leaving = False
        self.sio.on("relay", self._on_message)
        self.sio.on("signal", self._on_message)
        self.sio.on("peer-joined", self._on_joined)
        self.sio.on("peer-left", self._on_left)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_message(self, payload: dict[str, Any]) -> None:
        data = payload.get("data")
        if isinstance(data, dict) and "n" in data:
            # Nobody let in: the room is ours and ``from`` is the id the
            # sender itself put in the body (the server's, not a claim).
            if payload.get("room") != self.room or payload.get("from") != data.get("k"):
                self.stats.misrouted += 1
            self.stats.received_message(payload["from"], self.peer_id, data["n"], data["t"])

    async def _on_joined(self, payload: dict[str, Any]) -> None:
        self.peers.add(payload["peerId"])

    async def _on_left(self, payload: dict[str, Any]) -> None:
        self.peers.discard(payload["peerId"])

    async def _on_disconnect(self, *args: Any) -> None:
        if not self.leaving:
            self.stats.unexpected_disconnects += 1

    async def connect(self, url: str) -> bool:
        try:
            await self.sio.connect(url, transports=self.transports, wait_timeout=CONNECT_TIMEOUT)
            return True
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.stats.connect_errors += 1
            self.stats.connect_error_kinds[type(exc).__name__] += 1
            return False

    async def join(self, room: str) -> bool:
        try:
            ack = await self.sio.call("join", {"room": room}, timeout=ACK_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            self.stats.join_errors[type(exc).__name__] += 1
            return False
        if not ack.get("ok"):
            self.stats.join_errors[ack["error"]["code"]] += 1
            return False
        self.stats.joins += 1
        self.room = room
        self.peer_id = ack["peerId"]
        self.peers = {p["peerId"] for p in ack["peers"]}
        return True

    def send(self, event: str, to: str, pad: str = "", extra: dict[str, Any] | None = None) -> None:
        seq = self.seq[to]
        self.seq[to] = seq + 1
        key = (self.peer_id, to, seq)
        now = time.monotonic()
        body = {"k": self.peer_id, "n": seq, "t": now, "p": pad, **(extra or {})}
        if event == "relay":
            payload = {"room": self.room, "to": to, "event": "load", "data": body}
        else:
            payload = {"room": self.room, "to": to, "data": body}
        self.stats.pending[key] = now
        self.stats.inflight[self.peer_id] += 1
        self.stats.sent += 1

        def on_ack(reply: Any = None) -> None:
            self.stats.acked(key, reply)

        task = asyncio.ensure_future(self.sio.emit(event, payload, callback=on_ack))
        task.add_done_callback(_swallow)

    def in_flight(self) -> int:
        return self.stats.inflight[self.peer_id]

    async def leave(self) -> None:
        self.leaving = True
        if self.sio.connected and self.room:
            try:
                await self.sio.call("leave", {"room": self.room}, timeout=ACK_TIMEOUT)
                self.stats.leaves += 1
            except Exception:  # noqa: BLE001
                self.stats.join_errors["leave-failed"] += 1
        # Not a bare disconnect(): on polling, with the leave POST's response
        # still on its way, python-engineio would send no goodbye (bug 6).
        await disconnect_flushed(self.sio)


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def sweeper(stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        stats.sweep(time.monotonic())
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
    stats.sweep(time.monotonic())


async def settle(stats: Stats, timeout: float = ACK_TIMEOUT + 2) -> None:
    """Wait until every message has an outcome and every expected one arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats.sweep(time.monotonic())
        if not stats.pending and stats.expected <= stats.received:
            return
        await asyncio.sleep(0.1)
    stats.sweep(time.monotonic() + ACK_TIMEOUT + 1)


async def connect_many(clients: list[Client], urls: list[str], rate: float) -> float:
    """Start connects at ``rate``/s; returns seconds until all are done."""
    start = time.monotonic()
    tasks = []
    for index, client in enumerate(clients):
        target = start + index / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(client.connect(urls[index % len(urls)])))
    await asyncio.gather(*tasks)
    return time.monotonic() - start


async def join_pairs(clients: list[Client], prefix: str) -> None:
    """Clients 2i and 2i+1 share a room of their own; each learns the other's id.

    Room names carry this process's id: several generator processes may
    share one server."""
    tag = f"{prefix}-{os.getpid()}"
    await asyncio.gather(*(c.join(f"{tag}-{i // 2}") for i, c in enumerate(clients)))
    for i in range(0, len(clients) - 1, 2):
        a, b = clients[i], clients[i + 1]
        a.peers = {b.peer_id}
        b.peers = {a.peer_id}


async def leave_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.leave() for c in clients if c.sio.connected or c.room))


# ------------------------------------------------------------------ scenarios
async def scenario_storm(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    """L1: connect ``clients`` websocket clients at ``rate``/s, hold, leave."""
    clients = [Client(stats, ["websocket"]) for _ in range(args.clients)]
    took = await connect_many(clients, args.urls, args.rate)
    connected = sum(1 for c in clients if c.sio.connected)
    mark("connected", connected=connected, seconds=round(took, 1))
    await asyncio.sleep(args.hold)
    still = sum(1 for c in clients if c.sio.connected)
    mark("held", connected=still)
    for c in clients:
        c.leaving = True
    await asyncio.gather(*(c.sio.disconnect() for c in clients))
    return {"clients": args.clients, "connected": connected, "connect_seconds": round(took, 1),
            "still_connected_after_hold": still}


async def scenario_burst(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    """L2: ``rooms`` pairs; each side sends an SDP then 21 candidates at once.

    The pairs start their bursts spread evenly over ``spread`` seconds (0: all
    at the same instant, where the p99 is the time to drain everything)."""
    clients = [Client(stats, ["websocket"]) for _ in range(args.rooms * 2)]
    await connect_many(clients, args.urls, args.rate)
    await join_pairs(clients, "burst")
    mark("connected")
    sdp = "v=0\r\n" + "a=x-filler:" + "y" * 3000 + "\r\n"
    start = time.monotonic()
    for pair in range(args.rooms):
        due = start + args.spread * pair / args.rooms
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        for i in (2 * pair, 2 * pair + 1):
            client, partner = clients[i], clients[i ^ 1]
            client.send("signal", partner.peer_id, extra={
                "type": "offer" if i % 2 == 0 else "answer", "sdp": sdp})
            for c in range(21):
                client.send("signal", partner.peer_id, extra={
                    "candidate": f"candidate:{c} 1 udp 2122260223 127.0.0.1 {40000 + c} typ host"})
    await settle(stats)
    took = time.monotonic() - start
    mark("traffic-end")
    await leave_all(clients)
    return {"rooms": args.rooms, "spread": args.spread, "signals": stats.sent,
            "seconds": round(took, 2)}


async def paced_senders(clients: list[Client], event: str, rate: float, size: int,
                        until: float, window: int, stats: Stats) -> None:
    pad = "x" * max(0, size - 60)

    async def run(client: Client) -> None:
        partner = next(iter(client.peers), None)
        if partner is None:
            return
        interval = 1.0 / rate
        next_at = time.monotonic() + random.random() * interval
        while True:
            now = time.monotonic()
            if next_at >= until:
                return
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at += interval
            if not client.sio.connected:
                return
            if client.in_flight() >= window:
                stats.not_sent_backpressure += 1
                continue
            client.send(event, partner, pad)

    await asyncio.gather(*(run(c) for c in clients))


async def scenario_pairs(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    """L3/L6/L7/L9: pairs relay ``size`` B at ``msg_rate``/s each for ``duration`` s.

    With ``--recovery`` (L4) the first ``recovery_peers`` keep sending at the same
    rate for ``recovery`` more seconds after the rest stop; the latency of what
    they send from 10 s after the stop is reported separately.
    """
    transports = args.transports.split(",")
    clients = [Client(stats, transports) for _ in range(args.clients)]
    took = await connect_many(clients, args.urls, args.rate)
    await join_pairs(clients, "pairs")
    mark("connected", seconds=round(took, 1),
         connected=sum(1 for c in clients if c.sio.connected))
    start = time.monotonic()
    stop_at = start + args.duration
    warm_until = start + min(5.0, args.duration / 4)
    await paced_senders(clients, "relay", args.msg_rate, args.size, stop_at, args.window, stats)
    extra: dict[str, Any] = {}
    if args.recovery:
        mark("overload-end")
        keep = clients[: args.recovery_peers]
        rec_end = stop_at + args.recovery
        await paced_senders(keep, "relay", args.msg_rate, args.size, rec_end, args.window, stats)
        extra["recovery"] = stats.summary(since=stop_at + 10, until=rec_end)
        extra["overload"] = stats.summary(since=start, until=stop_at)
    mark("traffic-end")
    await settle(stats)
    extra["steady"] = stats.summary(since=warm_until, until=stop_at)
    await leave_all(clients)
    return {"clients": args.clients, "msg_rate": args.msg_rate, "size": args.size,
            "duration": args.duration, "offered_per_s": args.clients * args.msg_rate, **extra}


async def scenario_churn(args: argparse.Namespace, stats: Stats) -> dict[str, Any]:
    """L5: ``clients`` loops of connect, join, stay 5-20 s signalling, leave."""
    rooms = max(1, args.clients // 4)
    end = time.monotonic() + args.duration
    cycles = 0

    async def life(index: int) -> None:
        nonlocal cycles
        await asyncio.sleep(random.random() * 5)
        while time.monotonic() < end:
            client = Client(stats, ["websocket"])
            if not await client.connect(args.urls[index % len(args.urls)]):
                await asyncio.sleep(1)
                continue
            if await client.join(f"churn-{os.getpid()}-{random.randrange(rooms)}"):
                stay_until = min(end, time.monotonic() + random.uniform(5, 20))
                while time.monotonic() < stay_until and client.sio.connected:
                    if client.peers:
                        client.send("signal", random.choice(sorted(client.peers)), "x" * 200)
                    await asyncio.sleep(random.uniform(0.5, 1.5))
            await client.leave()
            cycles += 1
            if time.monotonic() < end:
                await asyncio.sleep(random.uniform(0.2, 2))

    stop = asyncio.Event()
    reporter = asyncio.ensure_future(_progress(stats, stop, args.progress))
    await asyncio.gather(*(life(i) for i in range(args.clients)))
    stop.set()
    await reporter
    mark("traffic-end")
    await settle(stats)
    return {"clients": args.clients, "rooms": rooms, "duration": args.duration, "cycles": cycles}


async def _progress(stats: Stats, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            summary = stats.summary()
            mark("progress", sent=summary["sent"], delivered=summary["delivered"],
                 failed=summary["failed_reported"], joins=summary["joins"])


SCENARIOS = {"storm": scenario_storm, "burst": scenario_burst, "pairs": scenario_pairs,
             "churn": scenario_churn}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    stats = Stats()
    stop = asyncio.Event()
    sweeping = asyncio.ensure_future(sweeper(stats, stop))
    started = time.monotonic()
    details = await SCENARIOS[args.scenario](args, stats)
    stop.set()
    await sweeping
    mark("all-left")
    samples = [round(v * 1000, 2) for _at, v in stats.latencies]
    if len(samples) > 50_000:
        samples = random.sample(samples, 50_000)
    return {"scenario": args.scenario, "seconds": round(time.monotonic() - started, 1),
            **details, "totals": stats.summary(), "latency_samples_ms": samples}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", dest="urls", action="append", required=True)
    p.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--rate", type=float, default=200.0, help="connects per second")
    p.add_argument("--spread", type=float, default=0.0, help="L2: seconds the bursts start over")
    p.add_argument("--hold", type=float, default=10.0)
    p.add_argument("--msg-rate", type=float, default=20.0)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--transports", default="websocket")
    p.add_argument("--recovery", type=float, default=0.0)
    p.add_argument("--recovery-peers", type=int, default=100)
    p.add_argument("--progress", type=float, default=60.0)
    p.add_argument("--result-file", default="", help="write the result there, not on stdout")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(main_async(args))
    if args.result_file:
        # A result line of 100 KB or more was seen cut short on its way
        # through the pipe; a file has no such trouble.
        with open(args.result_file, "w") as out:
            json.dump(result, out)
        print(json.dumps({"result_file": args.result_file}), flush=True)
    else:
        os.set_blocking(sys.stdout.fileno(), True)
        print(json.dumps({"result": result}), flush=True)


if __name__ == "__main__":
    main()
