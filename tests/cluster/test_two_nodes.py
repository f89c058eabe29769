"""Two nodes act as one server: rooms, order, capacity, resume, node death, Redis faults."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import aiohttp
import pytest

from tests.cluster.conftest import NEEDS_REDIS, Connect, health, wait_health
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server

pytestmark = [pytest.mark.redis, NEEDS_REDIS]

FLAGS = ("--rate-limit", "0", "--resume-grace", "3")


def nodes(redis: RedisServer, *extra: str) -> Any:
    flags = ("--redis-url", redis.url, *FLAGS, *extra)
    return running_server(*flags), running_server(*flags)


async def test_peers_on_two_nodes_see_signal_and_relay_in_order(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a, b = await connect(one.url), await connect(two.url)
        ack_a = await a.join("room", meta={"n": "a"})
        ack_b = await b.join("room", meta={"n": "b"})
        assert ack_b["peers"] == [{"peerId": ack_a["peerId"], "meta": {"n": "a"}, "webrtc": True}]
        joined = await a.wait_for("peer-joined")
        assert joined[0]["peerId"] == ack_b["peerId"]
        reply = await a.request("signal", {"room": "room", "to": ack_b["peerId"], "data": {"sdp": "x"}})
        assert reply == {"ok": True}
        got = await b.wait_for("signal")
        assert got == [{"room": "room", "from": ack_a["peerId"], "data": {"sdp": "x"}}]
        for n in range(300):
            data: Any = {"n": n, "blob": bytes([n % 256]) * 3} if n % 2 else {"n": n}
            reply = await a.request("relay", {"room": "room", "event": "num", "data": data, "to": ack_b["peerId"]})
            assert reply == {"ok": True, "delivered": 1}
        relays = await b.wait_for("relay", 300)
        assert [r["data"]["n"] for r in relays] == list(range(300))
        assert all(r["data"]["blob"] == bytes([r["data"]["n"] % 256]) * 3 for r in relays if r["data"]["n"] % 2)
        assert all(r["from"] == ack_a["peerId"] and r["event"] == "num" for r in relays)
        # room-wide relay from the other side, binary at top level
        reply = await b.request("relay", {"room": "room", "event": "raw", "data": b"\x00\xffbin"})
        assert reply == {"ok": True, "delivered": 1}
        assert (await a.wait_for("relay"))[0]["data"] == b"\x00\xffbin"
        await b.request("leave", {"room": "room"})
        left = await a.wait_for("peer-left")
        assert left == [{"room": "room", "peerId": ack_b["peerId"], "reason": "left"}]


async def test_room_full_under_a_join_race_across_nodes(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server, "--max-peers-per-room", "2")
    async with one_cm as one, two_cm as two:
        clients = [await connect(url) for url in (one.url, two.url) * 3]
        replies = await asyncio.gather(*(c.join("race") for c in clients))
        assert sum(r["ok"] for r in replies) == 2
        assert sorted(r["error"]["code"] for r in replies if not r["ok"]) == ["room-full"] * 4


async def test_rooms_are_isolated_across_nodes(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a, b, c = await connect(one.url), await connect(two.url), await connect(two.url)
        ack_a = await a.join("x")
        ack_b = await b.join("y")
        await c.join("x")
        reply = await a.request("signal", {"room": "x", "to": ack_b["peerId"], "data": {}})
        assert reply["error"]["code"] == "unknown-peer"
        reply = await a.request("signal", {"room": "y", "to": ack_b["peerId"], "data": {}})
        assert reply["error"]["code"] == "not-in-room"
        reply = await a.request("relay", {"room": "x", "event": "e", "data": 1})
        assert reply == {"ok": True, "delivered": 1}
        await c.wait_for("relay")
        reply = await b.request("relay", {"room": "y", "event": "e", "data": 2})
        assert reply == {"ok": True, "delivered": 0}
        reply = await a.request("signal", {"room": "x", "to": ack_a["peerId"], "data": {}})
        assert reply["error"]["code"] == "unknown-peer"  # not to itself either
        assert b.received["relay"] == [] and b.received["signal"] == []
        assert all(r["data"] == 1 for r in c.received["relay"])


async def test_kill_a_node_its_peer_resumes_on_the_other(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a, b = await connect(one.url), await connect(two.url)
        gone = await connect(one.url)
        ack_a = await a.join("room")
        ack_gone = await gone.join("room")
        ack_b = await b.join("room")
        os.kill(one.pid, signal.SIGKILL)
        await one.process.wait()
        for n in range(5):  # to a peer whose node just died: kept for its resume
            reply = await b.request("relay", {"room": "room", "event": "n", "data": {"n": n}, "to": ack_a["peerId"]})
            assert reply == {"ok": True, "delivered": 1}
        again = await connect(two.url)
        ack = await again.join("room", resume=ack_a["resumeToken"])
        assert ack["ok"] and ack["resumed"] is True and ack["peerId"] == ack_a["peerId"]
        assert ack["rooms"] == ["room"] and ack["dropped"] == 0
        assert ack["resumeToken"] != ack_a["resumeToken"]
        kept = await again.wait_for("relay", 5)
        assert [r["data"]["n"] for r in kept] == list(range(5))
        reply = await b.request("signal", {"room": "room", "to": ack_a["peerId"], "data": {"after": 1}})
        assert reply == {"ok": True}
        assert (await again.wait_for("signal"))[0]["data"] == {"after": 1}
        # the one that never comes back: grace (3 s) after the heartbeat TTL (5 s)
        left = await b.wait_for("peer-left", timeout=20)
        assert left == [{"room": "room", "peerId": ack_gone["peerId"], "reason": "disconnected"}]
        assert [p for p in b.received["peer-left"] if p["peerId"] == ack_a["peerId"]] == []
        stale = await connect(two.url)
        reply = await stale.join("room", resume=ack_gone["resumeToken"])
        assert reply["error"]["code"] == "resume-expired"
        assert ack_b["ok"] and "Traceback" not in two.log()


async def test_redis_restart_during_traffic(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a1, a2, b = await connect(one.url), await connect(one.url), await connect(two.url)
        ack_a1 = await a1.join("room")
        ack_a2 = await a2.join("room")
        ack_b = await b.join("room")
        outcomes: dict[str, list[tuple[int, str]]] = {"local": [], "remote": []}

        async def send(kind: str, to: str, n: int) -> None:
            reply = await a1.request("signal", {"room": "room", "to": to, "data": {"kind": kind, "n": n}})
            outcomes[kind].append((n, "ok" if reply["ok"] else reply["error"]["code"]))

        n = 0
        for _ in range(10):
            await send("local", ack_a2["peerId"], n)
            await send("remote", ack_b["peerId"], n)
            n += 1
        redis_server.stop()
        await wait_health(one.url, 503)
        assert await health(two.url) in (200, 503)
        for _ in range(10):  # local delivery goes on; cross-node fails loudly
            await send("local", ack_a2["peerId"], n)
            await send("remote", ack_b["peerId"], n)
            n += 1
        assert all(o == "ok" for _, o in outcomes["local"])
        assert [o for _, o in outcomes["remote"][10:]] == ["unavailable"] * 10
        redis_server.start()
        await wait_health(one.url, 200)
        await wait_health(two.url, 200)
        for _ in range(10):
            await send("local", ack_a2["peerId"], n)
            await send("remote", ack_b["peerId"], n)
            n += 1
        assert all(o == "ok" for _, o in outcomes["local"])
        assert [o for _, o in outcomes["remote"][20:]] == ["ok"] * 10
        # every message: delivered exactly once in order, or its sender was told
        for kind, client in (("local", a2), ("remote", b)):
            ok = [m for m, o in outcomes[kind] if o == "ok"]
            got = await client.wait_for("signal", len(ok))
            assert [s["data"]["n"] for s in got] == ok
        # the rooms came back whole after Redis restarted empty
        late = await connect(two.url)
        ack = await late.join("room")
        assert sorted(p["peerId"] for p in ack["peers"]) == sorted(
            [ack_a1["peerId"], ack_a2["peerId"], ack_b["peerId"]]
        )
        assert "Traceback" not in one.log() and "Traceback" not in two.log()


async def test_redis_down_at_start(redis_server: RedisServer, connect: Connect) -> None:
    """A node that starts without Redis has seen no room: a join answers
    ``unavailable`` (its members may be on other nodes) and works once Redis is up."""
    redis_server.stop()
    async with running_server("--redis-url", redis_server.url, *FLAGS) as one:
        assert await health(one.url) == 503
        a, b = await connect(one.url), await connect(one.url)
        refused = await a.join("solo")
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable"
        redis_server.start()
        await wait_health(one.url, 200)
        ack_a = await a.join("solo")
        assert ack_a["ok"]
        ack_b = await b.join("solo")
        assert [p["peerId"] for p in ack_b["peers"]] == [ack_a["peerId"]]
        async with running_server("--redis-url", redis_server.url, *FLAGS) as two:
            c = await connect(two.url)
            ack_c = await c.join("solo")
            assert sorted(p["peerId"] for p in ack_c["peers"]) == sorted([ack_a["peerId"], ack_b["peerId"]])
            await c.request("signal", {"room": "solo", "to": ack_a["peerId"], "data": {"x": 2}})
            assert (await a.wait_for("signal"))[0]["data"] == {"x": 2}


async def test_stream_survives_a_node_kill_and_resume(redis_server: RedisServer, connect: Connect) -> None:
    """b sends numbered relays to a without pause while a's node dies and a resumes on b's node."""
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a, b = await connect(one.url), await connect(two.url)
        ack_a = await a.join("room")
        await b.join("room")
        acked: list[int] = []
        stop = asyncio.Event()

        async def send() -> None:
            n = 0
            while not stop.is_set():
                reply = await b.request("relay", {"room": "room", "event": "n", "data": n, "to": ack_a["peerId"]})
                if reply["ok"]:
                    acked.append(n)
                n += 1

        sender = asyncio.create_task(send())
        await a.wait_for("relay", 20)
        os.kill(one.pid, signal.SIGKILL)
        await one.process.wait()
        before = [r["data"] for r in a.received["relay"]]
        again = await connect(two.url)
        ack = await again.join("room", resume=ack_a["resumeToken"])
        assert ack["ok"] and ack["peerId"] == ack_a["peerId"] and ack["dropped"] == 0
        first = await again.wait_for("relay")
        await again.wait_for("relay", len(first) + 50)
        stop.set()
        await sender
        after = await again.wait_for("relay", len([n for n in acked if n >= first[0]["data"]]))
        got = [r["data"] for r in after]
        # in order, none twice, no gap after the resume; only what the dead
        # node had already taken for a's old connection may be missing
        assert got == list(range(got[0], acked[-1] + 1))
        assert before == list(range(len(before)))
        assert got[0] <= len(before) + 200


async def test_sigterm_a_node_its_peers_resume_on_the_other(redis_server: RedisServer, connect: Connect) -> None:
    # SIGTERM marks a lost at once, so its grace runs from there: 30 s, not the
    # file's 3 s, which a loaded machine can spend before the resume below.
    one_cm, two_cm = nodes(redis_server, "--resume-grace", "30")
    async with one_cm as one, two_cm as two:
        a, b = await connect(one.url), await connect(two.url)
        ack_a = await a.join("room")
        await b.join("room")
        one.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(one.process.wait(), 5) == 0
        reply = await b.request("signal", {"room": "room", "to": ack_a["peerId"], "data": {"kept": 1}})
        assert reply == {"ok": True}  # a is lost, not gone: kept for its resume
        again = await connect(two.url)
        ack = await again.join("room", resume=ack_a["resumeToken"])
        assert ack.get("resumed") is True and ack["peerId"] == ack_a["peerId"], ack
        assert (await again.wait_for("signal"))[0]["data"] == {"kept": 1}
        assert b.received["peer-left"] == []
        assert "Traceback" not in one.log()
        async with aiohttp.ClientSession() as http, http.get(f"{two.url}/metrics") as response:
            text = await response.text()
        assert "signaling_peers 2" in text and "signaling_rooms 1" in text
