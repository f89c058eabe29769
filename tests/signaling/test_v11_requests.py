"""Contract v1.1 requests end to end: ``update`` and ``ice-servers`` on the real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer, running_server
from tests.signaling.test_requests import Clients, clients, error_code  # noqa: F401
from tests.signaling.test_resume import kill, spawn_child


async def test_update_replaces_meta_for_the_room_and_later_joins(clients: Clients) -> None:  # noqa: F811
    a, b = await clients(), await clients()
    ack_a = await a.join("r", meta={"name": "alice"})
    await a.join("other", meta={"name": "alice"})
    await b.join("r")
    await a.wait_for("peer-joined")
    assert await a.request("update", {"room": "r", "meta": {"name": "alice", "mic": False}}) == {"ok": True}
    updated = await b.wait_for("peer-updated")
    assert updated == [{"room": "r", "peerId": ack_a["peerId"], "meta": {"name": "alice", "mic": False}}]
    assert not a.received["peer-updated"]  # the others, not the sender
    c = await clients()
    ack_c = await c.join("r")
    assert {p["peerId"]: p["meta"] for p in ack_c["peers"]}[ack_a["peerId"]] == {"name": "alice", "mic": False}
    assert next(p for p in ack_c["peers"] if p["peerId"] == ack_a["peerId"])["webrtc"] is True
    # only that room: "other" still shows the old meta
    d = await clients()
    ack_d = await d.join("other")
    assert ack_d["peers"][0]["meta"] == {"name": "alice"}


async def test_update_refusals_change_nothing(clients: Clients) -> None:  # noqa: F811
    a, b = await clients(), await clients()
    await a.join("r", meta={"v": 1})
    await b.join("r")
    assert error_code(await a.request("update", {"room": "nope", "meta": {}})) == "not-in-room"
    assert error_code(await a.request("update", {"room": "r"})) == "invalid-payload"
    assert error_code(await a.request("update", {"room": "r", "meta": [1]})) == "invalid-payload"
    assert error_code(await a.request("update", {"room": "r", "meta": {"x": b"\x00"}})) == "invalid-payload"
    assert error_code(await a.request("update", {"room": "r", "meta": {"x": "y" * 1100}})) == "payload-too-large"
    assert error_code(await a.request("update", {"room": "bad name", "meta": {}})) == "invalid-payload"
    c = await clients()
    ack = await c.join("r")
    assert all(p["meta"] in ({"v": 1}, {}) for p in ack["peers"])
    assert not b.received["peer-updated"]


async def test_updated_meta_is_kept_through_a_resume() -> None:
    async with running_server("--resume-grace", "30", "--rate-limit", "0") as server:
        b = await RecordingClient().connect(server.url)
        await b.join("r")
        child, ack = await spawn_child(server, "r", update={"room": "r", "meta": {"v": 2}})
        await b.wait_for("peer-updated")
        await kill(child)  # lost, not left: kept for the grace
        await server.log_line(f"disconnect {ack['peerId']}")
        a2 = await RecordingClient().connect(server.url)
        resumed = await a2.join("r", resume=ack["resumeToken"])
        assert resumed["resumed"] is True and resumed["peerId"] == ack["peerId"]
        c = await RecordingClient().connect(server.url)
        ack_c = await c.join("r")
        assert {p["peerId"]: p["meta"] for p in ack_c["peers"]}[ack["peerId"]] == {"v": 2}
        for client in (a2, b, c):
            await client.disconnect()


@pytest.fixture
async def turn_server() -> AsyncIterator[RunningServer]:
    async with running_server("--turn-url", "turn:turn.example:3478", "--turn-secret", "s3cret",
                              "--turn-ttl", "600", "--stun", "stun:stun.example:3478") as server:
        yield server


async def test_ice_servers_mints_fresh_turn_credentials(turn_server: RunningServer) -> None:
    a = await RecordingClient().connect(turn_server.url)
    try:
        before = time.time()
        reply = await a.request("ice-servers", {})
        assert reply["ok"] is True and set(reply) == {"ok", "iceServers"}
        stun, turn = reply["iceServers"]
        assert stun == {"urls": ["stun:stun.example:3478"]}
        assert turn["urls"] == ["turn:turn.example:3478"]
        expiry, peer_id = turn["username"].split(":")
        assert before + 600 - 2 <= int(expiry) <= time.time() + 600 + 1
        digest = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()
        ack = await a.join("r")
        assert peer_id == ack["peerId"]  # the same peer as the join, before and after
        again = await a.request("ice-servers", {})
        assert again["iceServers"][1]["username"].endswith(":" + ack["peerId"])
        assert error_code(await a.request("ice-servers", [])) == "invalid-payload"
    finally:
        await a.disconnect()


async def test_ice_servers_empty_without_configuration(clients: Clients) -> None:  # noqa: F811
    a = await clients()
    assert await a.request("ice-servers", {}) == {"ok": True, "iceServers": []}
