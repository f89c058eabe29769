"""What one hostile client can cost the server at the default limits (issue 13).

    python -m bench.abuse_cost [--duration 10] [--json out.json]

Starts the real server with its defaults (only ``--log-level warning``), then
for each scenario one "attacker" connection sends as fast as the server
answers it at the request limit (100 a second), while 15 ordinary clients in its
room read everything; the first 3 s, which spend the bursts, are not measured. Reports,
per scenario: requests accepted and refused a second, the payload bytes the
server handed to peers a second (egress, from ``/metrics``), and the server's
CPU (process CPU seconds per wall second). The memory scenario joins connections
to 32 rooms each (the default ``--max-rooms-per-connection``) with 1 KiB of
meta per room and reads the server's RSS growth per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench.procstat import cpu_seconds, rss_kib
from bench.servers import REPO_DIR, ServerSpec, start

RECEIVERS = 15  # the default room holds 16
REQUESTS_PER_S = 100  # the default --rate-limit
WARMUP = 3.0  # seconds, not measured: the bursts (200 requests, 64 MiB) go first
META = {"pad": "m" * 1000}  # about 1 KiB as JSON


async def relayed_bytes(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("signaling_relayed_bytes_total "):
                return float(line.split()[1])
    return 0.0


async def client(url: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, transports=["websocket"], wait_timeout=20)
    return sio


async def flood(url: str, pid: int, room: str, event: str, body: Any, duration: float) -> dict[str, Any]:
    """One attacker sends ``event`` back to back for ``duration`` s; 15 receivers read."""
    receivers = [await client(url) for _ in range(RECEIVERS)]
    for sio in receivers:
        sio.on("relay", lambda *_: None)
        sio.on("signal", lambda *_: None)
        sio.on("peer-updated", lambda *_: None)
    ids = [(await sio.call("join", {"room": room}, timeout=20))["peerId"] for sio in receivers]
    attacker = await client(url)
    await attacker.call("join", {"room": room}, timeout=20)
    if isinstance(body, dict) and body.get("to") == "first":
        body = {**body, "to": ids[0]}
    accepted = refused = 0
    # At the request limit (100/s), never faster: past it the server disconnects
    # a client outright. The first WARMUP seconds spend the buckets' bursts.
    begin = time.monotonic()
    sent = 0
    bytes_before = cpu_before = 0.0
    start_at = begin
    while time.monotonic() - begin < WARMUP + duration:
        if start_at == begin and time.monotonic() - begin >= WARMUP:
            start_at = time.monotonic()
            accepted = refused = 0
            bytes_before, cpu_before = await relayed_bytes(url), cpu_seconds(pid) or 0.0
        due = begin + sent / REQUESTS_PER_S
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        sent += 1
        reply = await attacker.call(event, {"room": room, **body}, timeout=30)
        if reply.get("ok"):
            accepted += 1
        else:
            refused += 1
    took = time.monotonic() - start_at
    bytes_after, cpu_after = await relayed_bytes(url), cpu_seconds(pid) or 0.0
    for sio in [attacker, *receivers]:
        await sio.disconnect()
    return {
        "accepted_per_s": round(accepted / took, 1),
        "refused_per_s": round(refused / took, 1),
        "egress_MB_per_s": round((bytes_after - bytes_before) / took / 1e6, 2),
        "server_cpu": round((cpu_after - cpu_before) / took, 3),
    }


async def memory(url: str, pid: int, connections: int) -> dict[str, Any]:
    """RSS growth per connection joined to 32 rooms with 1 KiB meta in each."""
    base = rss_kib(pid) or 0
    made = []
    for n in range(connections):
        sio = await client(url)
        for r in range(32):
            ack = await sio.call("join", {"room": f"mem-{n}-{r}", "meta": META}, timeout=20)
            assert ack["ok"], ack
        refused = await sio.call("join", {"room": f"mem-{n}-extra"}, timeout=20)
        assert refused["error"]["code"] == "too-many-rooms", refused
        made.append(sio)
    grown = (rss_kib(pid) or 0) - base
    for sio in made:
        await sio.disconnect()
    return {"connections": connections, "rss_KiB_per_connection": round(grown / connections, 1)}


SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "relay 1 MiB binary to the room (15 peers)": ("relay", {"event": "x", "data": b"\0" * (1 << 20)}),
    "relay 64 KiB binary to the room (15 peers)": ("relay", {"event": "x", "data": b"\0" * (64 << 10)}),
    "signal 60 KB JSON to one peer": ("signal", {"to": "first", "data": {"sdp": "s" * 60_000}}),
    "update 1 KiB meta (15 peers told)": ("update", {"meta": META}),
    "relay 10 B to the room (15 peers)": ("relay", {"event": "x", "data": "0123456789"[:8]}),
}


async def main_async(duration: float, connections: int) -> dict[str, Any]:
    spec = ServerSpec("abuse", "signaling defaults",
                      [sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0",
                       "--log-level", "warning"], REPO_DIR)
    with tempfile.TemporaryDirectory() as logs:
        server = start(spec, core=None, log_dir=Path(logs))
        try:
            results: dict[str, Any] = {}
            for n, (name, (event, body)) in enumerate(SCENARIOS.items()):
                results[name] = await flood(server.url, server.pid, f"room{n}", event, body, duration)
                print(name, results[name], flush=True)
            results["memory"] = await memory(server.url, server.pid, connections)
            print("memory", results["memory"], flush=True)
            return results
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=20, help="for the memory scenario")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.duration, args.connections))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
