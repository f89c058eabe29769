"""The admin API (protocol.md v1.1, Operations): one node, and two Redis-backed nodes."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

from tests.cluster.conftest import NEEDS_REDIS, Connect
from tests.helpers.clients import RecordingClient
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server
from tests.ops.conftest import TOKEN, Admin

FLAGS = ("--admin-token", TOKEN, "--rate-limit", "0")


async def test_off_by_default(http: aiohttp.ClientSession) -> None:
    async with running_server() as server:
        status, _ = await Admin(http, server.url).call("GET", "/admin/rooms")
        assert status == 404


async def test_token_from_the_environment(http: aiohttp.ClientSession) -> None:
    async with running_server(env={"SIGNALING_ADMIN_TOKEN": TOKEN}) as server:
        assert await Admin(http, server.url).call("GET", "/admin/rooms") == (200, {"rooms": []})


async def test_token_is_required_and_checked(http: aiohttp.ClientSession) -> None:
    async with running_server(*FLAGS) as server:
        assert (await Admin(http, server.url, token=None).call("GET", "/admin/rooms"))[0] == 401
        status, body = await Admin(http, server.url, token=TOKEN + "x").call("GET", "/admin/rooms")
        assert status == 403 and body["error"]["code"] == "unauthorized"
        basic = {"Authorization": "Basic " + TOKEN}
        assert (await Admin(http, server.url, token=None).call("GET", "/admin/rooms", headers=basic))[0] == 401
        assert await Admin(http, server.url).call("GET", "/admin/rooms") == (200, {"rooms": []})


async def test_list_peek_relay_kick(http: aiohttp.ClientSession, connect: Connect) -> None:
    async with running_server(*FLAGS) as server:
        admin = Admin(http, server.url)
        a, b, c = await connect(server.url), await connect(server.url), await connect(server.url)
        ack_a = await a.join("room", meta={"n": "a"})
        ack_b = await b.join("room", meta={"n": "b"}, webrtc=False)
        await c.join("other")
        status, body = await admin.call("GET", "/admin/rooms")
        assert status == 200
        assert sorted(body["rooms"], key=lambda r: r["room"]) == [
            {"room": "other", "peers": 1}, {"room": "room", "peers": 2}]
        status, body = await admin.call("GET", "/admin/rooms/room")
        assert status == 200 and body["room"] == "room"
        assert sorted(body["peers"], key=lambda p: p["meta"]["n"]) == [
            {"peerId": ack_a["peerId"], "meta": {"n": "a"}, "webrtc": True, "connected": True},
            {"peerId": ack_b["peerId"], "meta": {"n": "b"}, "webrtc": False, "connected": True},
        ]
        assert (await admin.call("GET", "/admin/rooms/nobody-here"))[0] == 404

        status, body = await admin.call("POST", "/admin/rooms/room/relay", {"event": "notice", "data": {"x": 1}})
        assert (status, body) == (200, {"ok": True, "delivered": 2})
        for client in (a, b):
            assert (await client.wait_for("relay")) == [
                {"room": "room", "from": "server", "event": "notice", "data": {"x": 1}}]
        assert c.received["relay"] == []

        status, body = await admin.call("POST", "/admin/rooms/room/kick", {"peerId": ack_b["peerId"]})
        assert (status, body) == (200, {"ok": True})
        left = await a.wait_for("peer-left")
        assert left == [{"room": "room", "peerId": ack_b["peerId"], "reason": "kicked"}]
        await asyncio.wait_for(b.sio.wait(), 10)  # the server ended its connection
        assert not b.sio.connected
        # the kicked peer may not resume
        again = await connect(server.url)
        reply = await again.join("room", resume=ack_b["resumeToken"])
        assert reply["ok"] is False and reply["error"]["code"] == "resume-expired"
        status, body = await admin.call("GET", "/admin/rooms/room")
        assert [p["peerId"] for p in body["peers"]] == [ack_a["peerId"]]


async def test_kick_of_a_lost_peer(http: aiohttp.ClientSession, connect: Connect) -> None:
    async with running_server(*FLAGS, "--resume-grace", "60") as server:
        admin = Admin(http, server.url)
        a, b = await connect(server.url), await connect(server.url)
        await a.join("room")
        ack_b = await b.join("room")
        await b.sio.eio.ws.close(code=4000)  # not on purpose: b is lost, kept for the grace
        await server.log_line(f"lost {ack_b['peerId']}")
        _, body = await admin.call("GET", "/admin/rooms/room")
        assert {p["peerId"]: p["connected"] for p in body["peers"]}[ack_b["peerId"]] is False
        assert (await admin.call("POST", "/admin/rooms/room/kick", {"peerId": ack_b["peerId"]}))[0] == 200
        assert (await a.wait_for("peer-left"))[0]["reason"] == "kicked"
        again = await connect(server.url)
        reply = await again.join("room", resume=ack_b["resumeToken"])
        assert reply["error"]["code"] == "resume-expired"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/admin/rooms/room/kick", {}, 400, "invalid-payload"),
        ("/admin/rooms/room/kick", {"peerId": 5}, 400, "invalid-payload"),
        ("/admin/rooms/room/kick", ["x"], 400, "invalid-payload"),
        ("/admin/rooms/room/kick", {"peerId": "nobody"}, 404, "unknown-peer"),
        ("/admin/rooms/bad%20room/kick", {"peerId": "x"}, 400, "invalid-payload"),
        ("/admin/rooms/room/relay", {"data": 1}, 400, "invalid-payload"),
        ("/admin/rooms/room/relay", {"event": "e"}, 400, "invalid-payload"),
        ("/admin/rooms/room/relay", {"event": "e", "data": "x" * 2000}, 413, "payload-too-large"),
    ],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    http: aiohttp.ClientSession, connect: Connect, path: str, body: object, status: int, code: str
) -> None:
    async with running_server(*FLAGS, "--max-relay-bytes", "1000") as server:
        admin = Admin(http, server.url)
        a = await connect(server.url)
        await a.join("room")
        got_status, got = await admin.call("POST", path, body)
        assert got_status == status and got["error"]["code"] == code, got
        assert got["error"]["message"]
        assert (await admin.call("GET", "/admin/rooms"))[1] == {"rooms": [{"room": "room", "peers": 1}]}
        assert a.received["relay"] == [] and a.sio.connected


async def test_body_size_is_bounded(http: aiohttp.ClientSession) -> None:
    async with running_server(*FLAGS, "--max-relay-bytes", "1000") as server:
        status, body = await Admin(http, server.url).call(
            "POST", "/admin/rooms/room/relay", data=b"{" + b" " * 200_000 + b"}",
            headers={"Content-Type": "application/json"})
        assert status == 413 and body["error"]["code"] == "payload-too-large"
        status, body = await Admin(http, server.url).call(
            "POST", "/admin/rooms/room/relay", data=b"{not json", headers={"Content-Type": "application/json"})
        assert status == 400 and "not JSON" in body["error"]["message"]
        assert (await Admin(http, server.url).call("GET", "/admin/rooms?limit=0"))[0] == 400


@NEEDS_REDIS
@pytest.mark.redis
async def test_cluster_wide_list_peek_kick_relay(
    http: aiohttp.ClientSession, connect: Connect, redis_server: RedisServer
) -> None:
    flags = (*FLAGS, "--redis-url", redis_server.url, "--resume-grace", "30")
    async with running_server(*flags) as one, running_server(*flags) as two:
        a, b = await connect(one.url), await connect(one.url)
        c = await connect(two.url)
        ack_a = await a.join("room")
        ack_b = await b.join("room")
        await c.join("room")
        admin_two = Admin(http, two.url)
        status, body = await admin_two.call("GET", "/admin/rooms")
        assert body == {"rooms": [{"room": "room", "peers": 3}]}
        status, body = await admin_two.call("GET", "/admin/rooms/room")
        assert status == 200 and len(body["peers"]) == 3 and all(p["connected"] for p in body["peers"])
        assert await admin_two.call("POST", "/admin/rooms/room/relay", {"event": "e", "data": [1]}) == (
            200, {"ok": True, "delivered": 3})
        for client in (a, b, c):
            assert (await client.wait_for("relay"))[0]["from"] == "server"
        # b lives on node one; node two kicks it
        assert (await admin_two.call("POST", "/admin/rooms/room/kick", {"peerId": ack_b["peerId"]}))[0] == 200
        for client in (a, c):
            left = await client.wait_for("peer-left")
            assert left == [{"room": "room", "peerId": ack_b["peerId"], "reason": "kicked"}]
        again = await connect(two.url)
        assert (await again.join("room", resume=ack_b["resumeToken"]))["error"]["code"] == "resume-expired"
        # a lost peer on node one, kicked from node two
        await a.sio.eio.ws.close(code=4000)
        await one.log_line(f"lost {ack_a['peerId']}")
        assert (await admin_two.call("POST", "/admin/rooms/room/kick", {"peerId": ack_a["peerId"]}))[0] == 200
        left = await c.wait_for("peer-left", 2)
        assert left[1] == {"room": "room", "peerId": ack_a["peerId"], "reason": "kicked"}
        assert (await again.join("room", resume=ack_a["resumeToken"]))["error"]["code"] == "resume-expired"


async def test_metrics_for_the_alerts(http: aiohttp.ClientSession) -> None:
    """The series docs/deployment.md's alert rules use: backend up, refused connects."""
    async with running_server("--auth-secret", "s" * 32) as server:
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling",
                            headers={"Origin": "https://evil.example"}) as response:
            assert response.status >= 400
        refused = RecordingClient()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(server.url, auth={"token": "not-a-jwt"})
        async with http.get(f"{server.url}/metrics") as response:
            text = await response.text()
    assert "signaling_backend_up 1.0" in text
    assert 'signaling_refused_connections_total{reason="origin"} 1.0' in text
    assert 'signaling_refused_connections_total{reason="unauthorized"} 1.0' in text
    assert "signaling_event_loop_lag_seconds" in text
