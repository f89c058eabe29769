"""Signed webhooks (protocol.md v1.1, Operations), posted to a real receiver on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from typing import Any

import aiohttp
import pytest

from signaling.webhooks import Webhooks
from tests.cluster.conftest import NEEDS_REDIS, Connect
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server
from tests.ops.conftest import Receiver

SECRET = "webhook-secret-for-tests"


def hook_flags(receiver: Receiver) -> tuple[str, ...]:
    return ("--webhook-url", receiver.url, "--webhook-secret", SECRET, "--rate-limit", "0")


def events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(body) for body, _ in receiver.posts]


def brief(receiver: Receiver) -> list[tuple[Any, ...]]:
    return [(e["type"], e.get("peerId"), e.get("reason")) for e in events(receiver)]


async def test_events_are_signed_and_in_order(receiver: Receiver, connect: Connect) -> None:
    async with running_server(*hook_flags(receiver)) as server:
        a, b = await connect(server.url), await connect(server.url)
        pa = (await a.join("room"))["peerId"]
        pb = (await b.join("room"))["peerId"]
        await b.request("leave", {"room": "room"})
        await a.disconnect()
        await receiver.wait_for(lambda posts: len(posts) >= 6)
        assert brief(receiver) == [
            ("room-created", None, None),
            ("peer-joined", pa, None),
            ("peer-joined", pb, None),
            ("peer-left", pb, "left"),
            ("peer-left", pa, "left"),
            ("room-closed", None, None),
        ]
        for body, headers in receiver.posts:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Signaling-Signature"] == expected
            assert headers["Content-Type"] == "application/json"
            event = json.loads(body)
            assert event["room"] == "room" and isinstance(event["at"], float)
            assert set(event) <= {"type", "room", "peerId", "reason", "at"}
        ats = [e["at"] for e in events(receiver)]
        assert ats == sorted(ats)
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
            text = await response.text()
        assert 'signaling_webhook_events_total{outcome="sent"} 6.0' in text
        assert 'signaling_webhook_events_total{outcome="dropped"} 0.0' in text


async def test_an_update_is_posted(receiver: Receiver, connect: Connect) -> None:
    async with running_server(*hook_flags(receiver)) as server:
        a, b = await connect(server.url), await connect(server.url)
        pa = (await a.join("room"))["peerId"]
        await b.join("room")
        assert await a.request("update", {"room": "room", "meta": {"name": "x"}}) == {"ok": True}
        refused = await b.request("update", {"room": "elsewhere", "meta": {}})
        assert refused["error"]["code"] == "not-in-room"
        await receiver.wait_for(lambda posts: len(posts) >= 4)
        assert brief(receiver)[3] == ("peer-updated", pa, None)
        await a.disconnect()
        await receiver.wait_for(lambda posts: len(posts) >= 5)
        # the refused update posted nothing: the next event is a's departure
        assert brief(receiver)[4] == ("peer-left", pa, "left")
        assert events(receiver)[3]["room"] == "room"


async def test_a_failing_endpoint_is_retried(receiver: Receiver, connect: Connect) -> None:
    receiver.status = 503
    async with running_server(*hook_flags(receiver)) as server:
        a = await connect(server.url)
        await a.join("room")
        await receiver.wait_for(lambda posts: len(posts) >= 2)  # the first event, tried twice
        assert events(receiver)[0] == events(receiver)[1]
        receiver.status = 200
        await receiver.wait_for(lambda posts: [json.loads(b)["type"] for b, _ in posts][-1] == "peer-joined")
        types = [e["type"] for e in events(receiver)]
        assert types[0] == "room-created" and types.count("peer-joined") == 1  # order kept: created first
        assert types.index("peer-joined") > max(i for i, t in enumerate(types) if t == "room-created")


def dead_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on (bound, then closed)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def test_a_dead_endpoint_is_bounded() -> None:
    hooks = Webhooks(dead_url(), SECRET, lanes=2, queue_size=5, attempts=2, first_backoff=0.05)
    await hooks.start()
    try:
        for n in range(200):
            hooks.emit("peer-joined", f"room-{n % 7}", f"peer-{n}")
        # never more than the bound waits; the rest were dropped at once and counted
        assert hooks.queued <= 10
        assert hooks.dropped >= 200 - 10 - 2  # at most one event per lane in flight
        async with asyncio.timeout(20):  # each queued event fails twice, fast
            while hooks.failed + hooks.dropped < 200:
                await asyncio.sleep(0.05)
        assert hooks.sent == 0
    finally:
        await hooks.close()


async def test_a_dead_endpoint_never_slows_requests(connect: Connect) -> None:
    async with running_server("--webhook-url", dead_url(), "--webhook-secret", SECRET,
                              "--rate-limit", "0", "--max-rooms-per-connection", "300") as server:
        a = await connect(server.url)
        for n in range(300):
            assert (await a.join(f"r{n}"))["ok"]
        async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as response:
            assert response.status == 200
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as response:
            text = await response.text()
        queue = next(line for line in text.splitlines() if line.startswith("signaling_webhook_queue "))
        assert float(queue.split()[1]) <= 4 * 1000


@pytest.mark.parametrize("argv", [("--webhook-url", "http://x.example/h"), ("--webhook-url", "ftp://x")])
async def test_bad_webhook_flags_exit_2(argv: tuple[str, ...]) -> None:
    process = await asyncio.create_subprocess_exec(
        "python", "-m", "signaling", *argv, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and b"--webhook-" in err


@NEEDS_REDIS
@pytest.mark.redis
async def test_each_event_is_posted_once_by_a_cluster(
    receiver: Receiver, connect: Connect, redis_server: RedisServer
) -> None:
    flags = (*hook_flags(receiver), "--redis-url", redis_server.url)
    async with running_server(*flags) as one, running_server(*flags) as two:
        a, b = await connect(one.url), await connect(two.url)
        pa = (await a.join("room"))["peerId"]
        pb = (await b.join("room"))["peerId"]
        await b.request("leave", {"room": "room"})
        await a.request("leave", {"room": "room"})
        await receiver.wait_for(lambda posts: len(posts) >= 6)
        await a.join("sentinel")  # posted after the room's last event by the same node
        await receiver.wait_for(lambda posts: any(json.loads(p)["room"] == "sentinel" for p, _ in posts))
        room = sorted((e for e in events(receiver) if e["room"] == "room"), key=lambda e: e["at"])
        assert [(e["type"], e.get("peerId"), e.get("reason")) for e in room] == [
            ("room-created", None, None),
            ("peer-joined", pa, None),
            ("peer-joined", pb, None),
            ("peer-left", pb, "left"),
            ("peer-left", pa, "left"),
            ("room-closed", None, None),
        ]
