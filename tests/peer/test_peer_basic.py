"""Peer against the real server and real aiortc on loopback: presence, paths, messages."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from peer import Peer, PeerInfo, SignalingError
from tests.helpers.bounded import within
from tests.helpers.server import RunningServer, running_server

WAIT = 10.0
UPGRADE_WITHIN = 5.0


class Events:
    """Everything a Peer raises, by event name, with waits that time out."""

    def __init__(self, peer: Peer, *names: str) -> None:
        self.got: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self._changed = asyncio.Condition()
        for name in names:
            peer.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(sender: str, data: Any) -> None:
            async with self._changed:
                self.got[name].append((sender, data))
                self._changed.notify_all()

        return record

    async def wait(self, name: str, count: int = 1, timeout: float = WAIT) -> list[tuple[str, Any]]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.got[name]) >= count), timeout
            )
            return list(self.got[name])


LIFECYCLE = ("peer-joined", "peer-left", "upgrade", "downgrade")


@pytest.fixture
async def pair(server: RunningServer) -> AsyncIterator[tuple[Peer, Peer, Events, Events]]:
    a = Peer(server.url, "pair", meta={"name": "a"})
    b = Peer(server.url, "pair", meta={"name": "b"})
    ea = Events(a, *LIFECYCLE, "chat")
    eb = Events(b, *LIFECYCLE, "chat")
    await a.connect()
    await b.connect()
    try:
        yield a, b, ea, eb
    finally:
        await within(b.close(), "closing peer b")
        await within(a.close(), "closing peer a")


async def test_two_peers_see_each_other_and_upgrade(
    pair: tuple[Peer, Peer, Events, Events],
) -> None:
    a, b, ea, eb = pair
    assert a.id != b.id and len(a.id) >= 16
    (joined_id, info), = await ea.wait("peer-joined")
    assert joined_id == b.id and isinstance(info, PeerInfo)
    assert info.meta == {"name": "b"} and info.webrtc is True
    (seen_id, seen), = await eb.wait("peer-joined")  # present at join: raised too
    assert seen_id == a.id and seen.meta == {"name": "a"}
    assert set(a.peers) == {b.id} and set(b.peers) == {a.id}
    assert a.peers[b.id].meta == {"name": "b"}

    await ea.wait("upgrade", timeout=UPGRADE_WITHIN)
    await eb.wait("upgrade", timeout=UPGRADE_WITHIN)
    assert a.transport(b.id) == b.transport(a.id) == "webrtc"


async def test_json_and_bytes_both_ways(pair: tuple[Peer, Peer, Events, Events]) -> None:
    a, b, ea, eb = pair
    await ea.wait("upgrade", timeout=UPGRADE_WITHIN)
    await eb.wait("upgrade", timeout=UPGRADE_WITHIN)
    await a.emit("chat", {"text": "héllo", "n": [1, 2.5, None, True]}, to=b.id)
    await a.emit("chat", b"\x00\x01binary\xff", to=b.id)
    await b.emit("chat", "back")
    await b.emit("chat", bytes(range(256)) * 300)  # fragmented on the wire
    assert await eb.wait("chat", 2) == [
        (a.id, {"text": "héllo", "n": [1, 2.5, None, True]}),
        (a.id, b"\x00\x01binary\xff"),
    ]
    assert await ea.wait("chat", 2) == [(b.id, "back"), (b.id, bytes(range(256)) * 300)]


async def test_to_one_and_to_all(server: RunningServer) -> None:
    peers = [Peer(server.url, "three", meta={"i": i}) for i in range(3)]
    events = [Events(p, "chat", "upgrade", "peer-joined") for p in peers]
    for p in peers:
        await p.connect()
    try:
        a, b, c = peers
        await events[0].wait("peer-joined", 2)  # "everyone" is whom a knows of
        await a.emit("chat", "only b", to=b.id)
        await a.emit("chat", "everyone")
        assert await events[1].wait("chat", 2) == [(a.id, "only b"), (a.id, "everyone")]
        assert await events[2].wait("chat", 1) == [(a.id, "everyone")]
        await events[0].wait("upgrade", 2, timeout=UPGRADE_WITHIN)  # a to b and a to c
        await a.emit("chat", "only c", to=c.id)
        await a.emit("chat", "all again")
        assert await events[2].wait("chat", 3) == [
            (a.id, "everyone"), (a.id, "only c"), (a.id, "all again"),
        ]
        assert await events[1].wait("chat", 3) == [
            (a.id, "only b"), (a.id, "everyone"), (a.id, "all again"),
        ]
        assert events[0].got["chat"] == []
        with pytest.raises(SignalingError) as refused:
            await a.emit("chat", "nobody", to="no-such-peer")
        assert refused.value.code == "unknown-peer"
    finally:
        for p in peers:
            await p.close()


async def test_without_webrtc_everything_goes_through_the_relay(server: RunningServer) -> None:
    async with Peer(server.url, "mixed") as normal:
        plain = Peer(server.url, "mixed", webrtc=False)
        e_plain = Events(plain, "chat", "upgrade")
        e_normal = Events(normal, "chat", "upgrade", "peer-joined")
        async with plain:
            (joined, info), = await e_normal.wait("peer-joined")
            assert joined == plain.id and info.webrtc is False
            await normal.emit("chat", {"to": "plain"})
            await plain.emit("chat", b"raw bytes")
            assert await e_plain.wait("chat") == [(normal.id, {"to": "plain"})]
            assert await e_normal.wait("chat") == [(plain.id, b"raw bytes")]
            assert normal.transport(plain.id) == plain.transport(normal.id) == "relay"
        assert e_plain.got["upgrade"] == e_normal.got["upgrade"] == []


async def test_peer_left_and_async_with(server: RunningServer) -> None:
    async with Peer(server.url, "leaving") as stay:
        events = Events(stay, "peer-joined", "peer-left")
        async with Peer(server.url, "leaving") as go:
            gone_id = go.id
            await events.wait("peer-joined")
        assert await events.wait("peer-left") == [(gone_id, "left")]
        assert stay.peers == {}


async def test_refused_requests_raise_signaling_error_with_code() -> None:
    async with running_server("--max-peers-per-room", "1") as server, Peer(server.url, "tiny"):
        with pytest.raises(SignalingError) as full:
            await Peer(server.url, "tiny", reconnect=False).connect()
        assert full.value.code == "room-full"
        assert Peer.SignalingError is SignalingError


async def test_auth_token() -> None:
    secret = "s3cret-for-tests-only-32-bytes-long!"
    async with running_server("--auth-secret", secret) as server:
        with pytest.raises(SignalingError) as refused:
            await Peer(server.url, "locked").connect()
        assert refused.value.code == "unauthorized"
        token = jwt.encode({"exp": int(time.time()) + 60, "rooms": ["locked"]}, secret, "HS256")
        async with Peer(server.url, "locked", token=token) as peer:
            assert peer.id
        with pytest.raises(SignalingError) as wrong_room:
            await Peer(server.url, "other", token=token).connect()
        assert wrong_room.value.code == "unauthorized"


async def test_unreachable_server_fails_fast() -> None:
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(Peer("http://127.0.0.1:9", "x").connect(), WAIT)


def test_the_signaling_listener_is_not_public() -> None:
    """Issue 17: what the signaling client calls is internal, not part of ``Peer``'s API."""
    public = {name for name in dir(Peer) if not name.startswith("_")}
    assert not {name for name in public if name.startswith("on_")}
    assert public >= {"on", "emit", "request", "handle", "update_meta", "path", "close"}
