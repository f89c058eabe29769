"""Every request, event and error code end to end: real server, real python-socketio clients."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Awaitable
from typing import Any

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer, running_server

Clients = Callable[..., Awaitable[RecordingClient]]


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[Clients]:
    made: list[RecordingClient] = []

    async def make(transports: list[str] | None = None) -> RecordingClient:
        client = await RecordingClient().connect(server.url, transports=transports)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.disconnect()


def error_code(reply: dict[str, Any]) -> str:
    assert reply["ok"] is False, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    return str(reply["error"]["code"])


async def test_join_ack_shape(clients: Clients) -> None:
    a = await clients()
    ack = await a.join("room-1")
    assert set(ack) == {"ok", "room", "peerId", "peers", "iceServers", "resumeToken"}
    assert ack["ok"] is True and ack["room"] == "room-1" and ack["peers"] == []
    assert ack["iceServers"] == []
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", ack["peerId"])
    assert ack["peerId"] != a.sio.get_sid("/") and ack["peerId"] != a.sio.eio.sid
    other = await a.join("room-2")
    assert other["peerId"] == ack["peerId"] and other["resumeToken"] == ack["resumeToken"]


async def test_peer_joined_and_roster(clients: Clients) -> None:
    a, b = await clients(), await clients()
    ack_a = await a.join("r", meta={"name": "alice"})
    ack_b = await b.join("r", meta={"name": "bob"}, webrtc=False)
    assert ack_b["peers"] == [{"peerId": ack_a["peerId"], "meta": {"name": "alice"}, "webrtc": True}]
    joined = await a.wait_for("peer-joined")
    assert joined == [{"room": "r", "peerId": ack_b["peerId"], "meta": {"name": "bob"}, "webrtc": False}]


async def test_rejoin_gives_same_ack_and_no_second_announcement(clients: Clients) -> None:
    a, b = await clients(), await clients()
    await a.join("r")
    first = await b.join("r", meta={"v": 1})
    again = await b.join("r", meta={"v": 2})
    assert (again["peerId"], again["resumeToken"]) == (first["peerId"], first["resumeToken"])
    # a relay sent after the re-join arrives after anything the re-join caused
    await b.request("relay", {"room": "r", "event": "marker", "data": 1})
    await a.wait_for("relay")
    assert len(a.received["peer-joined"]) == 1
    c = await clients()
    roster = (await c.join("r"))["peers"]
    assert {"peerId": first["peerId"], "meta": {"v": 1}, "webrtc": True} in roster


async def test_room_full() -> None:
    async with running_server("--max-peers-per-room", "2") as server:
        made = [await RecordingClient().connect(server.url) for _ in range(3)]
        try:
            assert (await made[0].join("r"))["ok"] and (await made[1].join("r"))["ok"]
            assert error_code(await made[2].join("r")) == "room-full"
            assert (await made[2].join("other"))["ok"]
        finally:
            for client in made:
                await client.disconnect()


async def test_leave(clients: Clients) -> None:
    a, b = await clients(), await clients()
    await a.join("r")
    ack_b = await b.join("r")
    assert await b.request("leave", {"room": "r"}) == {"ok": True}
    assert await a.wait_for("peer-left") == [{"room": "r", "peerId": ack_b["peerId"], "reason": "left"}]
    assert error_code(await b.request("leave", {"room": "r"})) == "not-in-room"


async def test_disconnect_leaves_every_room(clients: Clients) -> None:
    a, b = await clients(), await clients()
    await a.join("r1")
    await a.join("r2")
    ack_b = await b.join("r1")
    await b.join("r2")
    await b.disconnect()
    left = await a.wait_for("peer-left", 2)
    assert sorted((e["room"], e["reason"], e["peerId"]) for e in left) == [
        ("r1", "left", ack_b["peerId"]), ("r2", "left", ack_b["peerId"])]


async def test_signal_is_stamped_and_isolated(clients: Clients) -> None:
    a, b, outsider = await clients(), await clients(), await clients()
    ack_a = await a.join("r")
    ack_b = await b.join("r")
    ack_o = await outsider.join("elsewhere")
    reply = await a.request("signal", {"room": "r", "to": ack_b["peerId"], "from": "forged",
                                        "data": {"type": "offer", "sdp": "v=0", "from": "x"}})
    assert reply == {"ok": True}
    got = await b.wait_for("signal")
    assert got == [{"room": "r", "from": ack_a["peerId"], "data": {"type": "offer", "sdp": "v=0", "from": "x"}}]
    for to in (ack_o["peerId"], ack_a["peerId"], "nobody-at-all"):
        assert error_code(await a.request("signal", {"room": "r", "to": to, "data": {}})) == "unknown-peer"
    assert error_code(await outsider.request("signal", {"room": "r", "to": ack_a["peerId"], "data": {}})) == "not-in-room"
    assert error_code(await a.request("signal", {"room": "elsewhere", "to": ack_o["peerId"], "data": {}})) == "not-in-room"
    await a.request("relay", {"room": "r", "event": "marker", "data": 0})
    await b.wait_for("relay")
    assert outsider.received["signal"] == [] and outsider.received["relay"] == []


async def test_relay_to_one_and_to_all(clients: Clients) -> None:
    a, b, c = await clients(), await clients(), await clients()
    ack_a = await a.join("r")
    await b.join("r")
    ack_c = await c.join("r")
    assert await a.request("relay", {"room": "r", "event": "hello", "data": {"n": 1}}) == {"ok": True, "delivered": 2}
    assert await a.request("relay", {"room": "r", "event": "dm", "data": "hi", "to": ack_c["peerId"]}) == {
        "ok": True, "delivered": 1}
    assert await b.wait_for("relay") == [{"room": "r", "from": ack_a["peerId"], "event": "hello", "data": {"n": 1}}]
    got_c = await c.wait_for("relay", 2)
    assert [(e["event"], e["data"]) for e in got_c] == [("hello", {"n": 1}), ("dm", "hi")]
    assert error_code(await a.request("relay", {"room": "r", "event": "x", "data": 1, "to": "ghost"})) == "unknown-peer"
    assert a.received["relay"] == []


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_binary_is_byte_exact(clients: Clients, transport: str) -> None:
    sender, receiver = await clients([transport]), await clients([transport])
    await sender.join("bin")
    await receiver.join("bin")
    blob = bytes((i * 7 + 3) % 256 for i in range(1_000_000))
    nested = {"parts": [b"\x00\xff", {"deep": bytes(range(256))}], "text": "ok"}
    assert (await sender.request("relay", {"room": "bin", "event": "blob", "data": blob}))["delivered"] == 1
    assert (await sender.request("relay", {"room": "bin", "event": "nested", "data": nested}))["delivered"] == 1
    got = await receiver.wait_for("relay", 2)
    assert got[0]["data"] == blob
    assert got[1]["data"] == nested


async def test_sizes_and_shapes(clients: Clients) -> None:
    a, b = await clients(), await clients()
    await a.join("r")
    ack_b = await b.join("r")
    cases: list[tuple[str, Any, str]] = [
        ("join", {"room": ""}, "invalid-payload"),
        ("join", {"room": "x" * 65}, "invalid-payload"),
        ("join", {"room": "a b"}, "invalid-payload"),
        ("join", {"room": "r", "meta": {"k": "x" * 1100}}, "payload-too-large"),
        ("join", {"room": "r", "meta": "name"}, "invalid-payload"),
        ("join", {"room": "r", "webrtc": "no"}, "invalid-payload"),
        ("signal", {"room": "r", "to": ack_b["peerId"], "data": "sdp"}, "invalid-payload"),
        ("signal", {"room": "r", "to": ack_b["peerId"], "data": {"sdp": "x" * 70_000}}, "payload-too-large"),
        ("relay", {"room": "r", "event": "a\u0007b", "data": 1}, "invalid-payload"),
        ("relay", {"room": "r", "event": "e" * 65, "data": 1}, "invalid-payload"),
        ("relay", {"room": "r", "event": "e", "data": bytes(1024 * 1024 + 1)}, "payload-too-large"),
        ("relay", "not an object", "invalid-payload"),
        ("frobnicate", {"room": "r"}, "invalid-payload"),
    ]
    for event, payload, code in cases:
        assert error_code(await a.request(event, payload)) == code, (event, payload)
    # none of them delivered anything
    await a.request("relay", {"room": "r", "event": "marker", "data": 0})
    assert [e["event"] for e in await b.wait_for("relay")] == ["marker"]
    assert b.received["signal"] == []


async def test_relay_limit_follows_the_flag() -> None:
    async with running_server("--max-relay-bytes", "1000") as server:
        a = await RecordingClient().connect(server.url)
        b = await RecordingClient().connect(server.url)
        try:
            await a.join("r")
            await b.join("r")
            assert (await a.request("relay", {"room": "r", "event": "e", "data": bytes(1000)}))["delivered"] == 1
            assert error_code(await a.request("relay", {"room": "r", "event": "e", "data": bytes(1001)})) == "payload-too-large"
            assert error_code(await a.request("relay", {"room": "r", "event": "e", "data": "x" * 999})) == "payload-too-large"
        finally:
            await a.disconnect()
            await b.disconnect()


async def test_rejected_when_no_ack_was_asked(clients: Clients) -> None:
    a = await clients()
    await a.sio.emit("leave", {"room": "nowhere"})
    await a.sio.emit("relay", {"room": "bad name", "event": "e", "data": 1})
    got = await a.wait_for("rejected", 2)
    assert got[0]["event"] == "leave" and got[0]["error"]["code"] == "not-in-room"
    assert got[1]["event"] == "relay" and got[1]["error"]["code"] == "invalid-payload"
    # a successful request without ack produces no event
    await a.sio.emit("join", {"room": "r"})
    assert (await a.request("leave", {"room": "r"})) == {"ok": True}
    assert len(a.received["rejected"]) == 2


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_order_of_signals_and_relays_from_one_sender(transport: str) -> None:
    async with running_server("--rate-limit", "0") as server:
        a = await RecordingClient().connect(server.url, transports=[transport])
        b = await RecordingClient().connect(server.url, transports=[transport])
        try:
            await _send_in_order(a, b)
        finally:
            await a.disconnect()
            await b.disconnect()


async def _send_in_order(a: RecordingClient, b: RecordingClient) -> None:
    await a.join("order")
    ack_b = await b.join("order")
    acks: list[asyncio.Future[Any]] = []
    loop = asyncio.get_running_loop()
    for n in range(1000):
        fut: asyncio.Future[Any] = loop.create_future()
        acks.append(fut)
        if n % 10 == 0:
            event, payload = "signal", {"room": "order", "to": ack_b["peerId"], "data": {"n": n}}
        else:
            event, payload = "relay", {"room": "order", "event": "n", "data": n, "to": ack_b["peerId"]}
        await a.sio.emit(event, payload, callback=lambda reply, f=fut: f.set_result(reply))
    replies = await asyncio.wait_for(asyncio.gather(*acks), 60)
    assert all(r["ok"] for r in replies)
    relays = await b.wait_for("relay", 900, timeout=60)
    signals = await b.wait_for("signal", 100, timeout=60)
    assert [e["data"] for e in relays] == [n for n in range(1000) if n % 10]
    assert [e["data"]["n"] for e in signals] == list(range(0, 1000, 10))
