"""``python -m bench.webhooks``: what webhooks add to a join and a leave.

One python-socketio client joins and leaves a room N times (each a fresh
room, so every cycle makes four events: room-created, peer-joined,
peer-left, room-closed) against a fresh server process per setting: no
webhooks, webhooks to a live receiver on loopback, and webhooks to a dead
endpoint (nothing listens: every event is retried, then dropped). It prints
the server's CPU time per cycle, the client's wall time per cycle, the
server's resident memory at the end, and the webhook counters.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import socketio
from aiohttp import web

from bench.procstat import cpu_seconds, rss_kib

READY = re.compile(r"listening on (http://[\d.]+:\d+)")


@asynccontextmanager
async def server(*flags: str) -> AsyncIterator[tuple[str, int]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", "--rate-limit", "0", "--log-level", "warning", *flags,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            if not line:
                raise RuntimeError("server did not start")
            if match := READY.search(line):
                break
        yield match.group(1), process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


async def cycles(url: str, pid: int, count: int) -> dict[str, float]:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"])
    try:
        for n in range(50):  # warm up
            await client.call("join", {"room": f"w{n}"})
            await client.call("leave", {"room": f"w{n}"})
        cpu0, t0 = cpu_seconds(pid) or 0.0, time.perf_counter()
        for n in range(count):
            assert (await client.call("join", {"room": f"r{n}"}))["ok"]
            assert (await client.call("leave", {"room": f"r{n}"}))["ok"]
        wall, cpu = time.perf_counter() - t0, (cpu_seconds(pid) or 0.0) - cpu0
    finally:
        await client.disconnect()
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    tallies = {m[0]: float(m[1]) for m in re.findall(r'signaling_webhook_events_total\{outcome="(\w+)"\} (\S+)', text)}
    return {"cpu_us": cpu / count * 1e6, "wall_us": wall / count * 1e6, "rss_mib": (rss_kib(pid) or 0) / 1024,
            **tallies}


async def main(count: int) -> None:
    secret = ("--webhook-secret", "bench-secret")
    async with receiver() as live:
        settings = {"no webhooks": (), "live receiver": ("--webhook-url", live, *secret),
                    "dead endpoint": ("--webhook-url", dead_url(), *secret)}
        print(f"{count} join+leave cycles (4 events each)")
        for name, flags in settings.items():
            async with server(*flags) as (url, pid):
                result = await cycles(url, pid, count)
            print(f"{name:14} server CPU {result['cpu_us']:7.0f} us/cycle  wall {result['wall_us']:7.0f} us/cycle  "
                  f"RSS {result['rss_mib']:6.1f} MiB  sent {result.get('sent', 0):.0f} "
                  f"failed {result.get('failed', 0):.0f} dropped {result.get('dropped', 0):.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--cycles", type=int, default=3000)
    asyncio.run(main(parser.parse_args().cycles))
