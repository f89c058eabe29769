"""The service's rules over the memory backend, with a fake clock; no sockets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from signaling.backends.base import Delivery
from signaling.backends.memory import MemoryBackend
from signaling.errors import (
    InvalidPayload,
    NotInRoom,
    ResumeExpired,
    RoomFull,
    Unauthorized,
    UnknownPeer,
)
from signaling.auth import TokenClaims
from signaling.protocol import parse_request
from signaling.service import KICK, Session, SignalingService
from signaling.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A service plus a record of what each peer was handed."""

    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.backend = MemoryBackend()
        self.service = SignalingService(Settings(**settings), self.backend, clock=self.clock)
        self.inbox: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    async def start(self) -> "World":
        await self.backend.start(self._sink)
        return self

    async def _sink(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self.inbox.setdefault(d.peer_id, []).append((d.event, d.payload))

    def session(self, rooms: frozenset[str] | None = None) -> Session:
        claims = TokenClaims(rooms=rooms, expires_at=self.clock() + 60) if rooms is not None else None
        return self.service.open_session(claims)

    async def do(self, session: Session, event: str, body: dict[str, Any]) -> dict[str, Any]:
        request = parse_request(event, [body], max_relay_bytes=1024 * 1024)
        return (await self.service.handle(session, request)).ack

    def events(self, peer_id: str, name: str) -> list[dict[str, Any]]:
        return [p for e, p in self.inbox.get(peer_id, []) if e == name]


@pytest.fixture
async def world() -> World:
    return await World().start()


async def test_join_announces_and_lists(world: World) -> None:
    a, b = world.session(), world.session()
    ack_a = await world.do(a, "join", {"room": "r", "meta": {"name": "a"}})
    assert ack_a["peers"] == [] and ack_a["peerId"] == a.peer_id
    ack_b = await world.do(b, "join", {"room": "r", "webrtc": False})
    assert ack_b["peers"] == [{"peerId": a.peer_id, "meta": {"name": "a"}, "webrtc": True}]
    assert world.events(a.peer_id, "peer-joined") == [
        {"room": "r", "peerId": b.peer_id, "meta": {}, "webrtc": False}
    ]
    assert len(a.peer_id) >= 16 and a.peer_id != b.peer_id


async def test_rejoin_is_idempotent(world: World) -> None:
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    first = await world.do(b, "join", {"room": "r", "meta": {"v": 1}})
    again = await world.do(b, "join", {"room": "r", "meta": {"v": 2}})
    assert again["peerId"] == first["peerId"] and again["resumeToken"] == first["resumeToken"]
    assert len(world.events(a.peer_id, "peer-joined")) == 1
    assert (await world.backend.members("r"))[1].meta == {"v": 1}


async def test_same_peer_id_in_every_room(world: World) -> None:
    a = world.session()
    one = await world.do(a, "join", {"room": "one"})
    two = await world.do(a, "join", {"room": "two"})
    assert one["peerId"] == two["peerId"] and one["resumeToken"] == two["resumeToken"]


async def test_room_full_changes_nothing() -> None:
    world = await World(max_peers_per_room=2).start()
    a, b, c = world.session(), world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(b, "join", {"room": "r"})
    with pytest.raises(RoomFull):
        await world.do(c, "join", {"room": "r"})
    assert [m.peer_id for m in await world.backend.members("r")] == [a.peer_id, b.peer_id]
    assert len(world.events(a.peer_id, "peer-joined")) == 1


async def test_leave_and_not_in_room(world: World) -> None:
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(b, "join", {"room": "r"})
    assert await world.do(b, "leave", {"room": "r"}) == {"ok": True}
    assert world.events(a.peer_id, "peer-left") == [{"room": "r", "peerId": b.peer_id, "reason": "left"}]
    with pytest.raises(NotInRoom):
        await world.do(b, "leave", {"room": "r"})


async def test_signal_routes_only_within_the_room(world: World) -> None:
    a, b, c = world.session(), world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(b, "join", {"room": "r"})
    await world.do(c, "join", {"room": "other"})
    await world.do(a, "signal", {"room": "r", "to": b.peer_id, "data": {"from": "forged"}})
    assert world.events(b.peer_id, "signal") == [{"room": "r", "from": a.peer_id, "data": {"from": "forged"}}]
    for to in (c.peer_id, a.peer_id, "nobody"):
        with pytest.raises(UnknownPeer):
            await world.do(a, "signal", {"room": "r", "to": to, "data": {}})
    with pytest.raises(NotInRoom):
        await world.do(c, "signal", {"room": "r", "to": a.peer_id, "data": {}})
    assert world.events(c.peer_id, "signal") == [] and world.events(a.peer_id, "signal") == []


async def test_relay_to_all_and_to_one(world: World) -> None:
    a, b, c = world.session(), world.session(), world.session()
    for s in (a, b, c):
        await world.do(s, "join", {"room": "r"})
    assert await world.do(a, "relay", {"room": "r", "event": "e", "data": [1]}) == {"ok": True, "delivered": 2}
    assert await world.do(a, "relay", {"room": "r", "event": "e", "data": 2, "to": c.peer_id}) == {
        "ok": True, "delivered": 1}
    assert [p["data"] for p in world.events(b.peer_id, "relay")] == [[1]]
    assert [p["data"] for p in world.events(c.peer_id, "relay")] == [[1], 2]
    assert world.events(a.peer_id, "relay") == []


async def test_token_rooms_claim() -> None:
    world = await World().start()
    limited = world.session(rooms=frozenset({"ok"}))
    await world.do(limited, "join", {"room": "ok"})
    with pytest.raises(Unauthorized):
        await world.do(limited, "join", {"room": "no"})


async def test_deliberate_disconnect_leaves_at_once(world: World) -> None:
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=False)
    assert world.events(a.peer_id, "peer-left") == [{"room": "r", "peerId": b.peer_id, "reason": "left"}]
    assert await world.backend.counts() == (1, 1)


async def test_lost_peer_is_kept_then_resumed_with_its_mail(world: World) -> None:
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack_b = await world.do(b, "join", {"room": "r"})
    await world.do(b, "join", {"room": "s"})
    await world.service.disconnected(b, lost=True)
    for n in range(3):
        reply = await world.do(a, "relay", {"room": "r", "event": "n", "data": n})
        assert reply["delivered"] == 1
    await world.do(a, "signal", {"room": "r", "to": b.peer_id, "data": {"k": 1}})
    world.clock.now += 14
    assert await world.service.expire() == 0
    assert world.events(a.peer_id, "peer-left") == []
    back = world.session()
    outcome = await world.service.handle(
        back, parse_request("join", [{"room": "s", "resume": ack_b["resumeToken"]}], max_relay_bytes=10)
    )
    assert outcome.ack["peerId"] == b.peer_id and outcome.ack["resumed"] is True
    assert sorted(outcome.ack["rooms"]) == ["r", "s"] and outcome.ack["dropped"] == 0
    assert outcome.ack["resumeToken"] != ack_b["resumeToken"]
    assert [d.event for d in outcome.then] == ["relay", "relay", "relay", "signal"]
    assert [d.payload["data"] for d in outcome.then[:3]] == [0, 1, 2]
    with pytest.raises(ResumeExpired):  # a token works once
        await world.do(world.session(), "join", {"room": "r", "resume": ack_b["resumeToken"]})


async def test_lost_peer_goes_after_the_grace(world: World) -> None:
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=True)
    world.clock.now += 15
    assert await world.service.expire() == 1
    assert world.events(a.peer_id, "peer-left") == [{"room": "r", "peerId": b.peer_id, "reason": "disconnected"}]
    assert await world.service.expire() == 0
    with pytest.raises(ResumeExpired):
        await world.do(world.session(), "join", {"room": "r", "resume": ack["resumeToken"]})


async def test_zero_grace_means_gone_at_once() -> None:
    world = await World(resume_grace=0).start()
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=True)
    assert world.events(a.peer_id, "peer-left")[0]["reason"] == "disconnected"


async def test_mailbox_drops_oldest_and_reports() -> None:
    world = await World().start()
    world.backend = MemoryBackend(mailbox_messages=2)
    world.service = SignalingService(replace(world.service.settings), world.backend, clock=world.clock)
    await world.backend.start(world._sink)
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=True)
    for n in range(5):
        await world.do(a, "relay", {"room": "r", "event": "n", "data": n})
    outcome = await world.service.handle(
        world.session(), parse_request("join", [{"room": "r", "resume": ack["resumeToken"]}], max_relay_bytes=10)
    )
    assert outcome.ack["dropped"] == 3
    assert [d.payload["data"] for d in outcome.then] == [3, 4]


async def test_resume_only_as_first_join(world: World) -> None:
    a, b = world.session(), world.session()
    ack = await world.do(a, "join", {"room": "r"})
    await world.service.disconnected(a, lost=True)
    await world.do(b, "join", {"room": "x"})
    with pytest.raises(InvalidPayload):
        await world.do(b, "join", {"room": "r", "resume": ack["resumeToken"]})


class _HookedBackend(MemoryBackend):
    """A memory backend that runs ``hook`` once, inside the next ``rooms_of``
    (the first step of a resume's join): a message arriving while that join
    waits, as it can with Redis."""

    hook: Any = None

    async def rooms_of(self, peer_id: str) -> list[str]:
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        return await super().rooms_of(peer_id)


async def _hooked_world(**settings: Any) -> World:
    world = World(**settings)
    world.backend = _HookedBackend()
    world.service = SignalingService(world.service.settings, world.backend, clock=world.clock)
    return await world.start()


async def test_resume_of_an_open_peer_sends_nothing_to_the_connection_it_replaces() -> None:
    world = await _hooked_world()
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})  # b's connection is still open

    async def a_signals_b() -> None:
        assert (await world.do(a, "signal", {"room": "r", "to": b.peer_id, "data": {"k": 1}}))["ok"]

    world.backend.hook = a_signals_b
    back = world.session()
    outcome = await world.service.handle(
        back, parse_request("join", [{"room": "r", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    assert outcome.ack["resumed"] is True
    assert world.events(b.peer_id, "signal") == []  # not to the old connection
    assert [d.payload["data"] for d in outcome.then] == [{"k": 1}]  # to the new one, after the ack
    assert world.service.resuming == {}


async def test_failed_resume_of_an_open_peer_hands_back_what_came_meanwhile() -> None:
    world = await _hooked_world(max_rooms_per_connection=1)
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})

    async def a_signals_b() -> None:
        await world.do(a, "signal", {"room": "r", "to": b.peer_id, "data": {"k": 2}})

    world.backend.hook = a_signals_b
    from signaling.errors import TooManyRooms

    with pytest.raises(TooManyRooms):  # resuming into a second room: one too many
        await world.service.handle(world.session(), parse_request(
            "join", [{"room": "s", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    assert world.events(b.peer_id, "signal") == [{"room": "r", "from": a.peer_id, "data": {"k": 2}}]
    assert await world.backend.expired(world.clock.now + 10**6) == []  # still an open peer, not lost
    await world.do(a, "signal", {"room": "r", "to": b.peer_id, "data": {"k": 3}})
    assert len(world.events(b.peer_id, "signal")) == 2  # live on its connection again
    again = await world.do(world.session(), "join", {"room": "r", "resume": ack["resumeToken"]})
    assert again["resumed"] is True  # the token it presented still works


async def test_failed_resume_keeps_the_deadline_and_the_dropped_count() -> None:
    world = World(max_rooms_per_connection=1)
    world.backend = MemoryBackend(mailbox_messages=2)
    world.service = SignalingService(world.service.settings, world.backend, clock=world.clock)
    await world.start()
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=True)  # deadline: now + 15
    for n in range(5):
        await world.do(a, "relay", {"room": "r", "event": "n", "data": n})
    world.clock.now += 10
    from signaling.errors import TooManyRooms

    with pytest.raises(TooManyRooms):
        await world.service.handle(world.session(), parse_request(
            "join", [{"room": "s", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    world.clock.now += 5  # the original deadline, not 15 s after the failed attempt
    assert await world.service.expire() == 1
    assert world.events(a.peer_id, "peer-left")[0]["reason"] == "disconnected"


async def test_failed_resume_keeps_the_dropped_count() -> None:
    world = World(max_rooms_per_connection=1)
    world.backend = MemoryBackend(mailbox_messages=2)
    world.service = SignalingService(world.service.settings, world.backend, clock=world.clock)
    await world.start()
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    await world.service.disconnected(b, lost=True)
    for n in range(5):
        await world.do(a, "relay", {"room": "r", "event": "n", "data": n})
    from signaling.errors import TooManyRooms

    with pytest.raises(TooManyRooms):
        await world.service.handle(world.session(), parse_request(
            "join", [{"room": "s", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    outcome = await world.service.handle(world.session(), parse_request(
        "join", [{"room": "r", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    assert outcome.ack["dropped"] == 3
    assert [d.payload["data"] for d in outcome.then] == [3, 4]


async def test_old_connection_leaving_during_a_failed_resume_does_not_leave_a_ghost() -> None:
    world = await _hooked_world(max_rooms_per_connection=1)
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})

    async def old_connection_says_goodbye() -> None:
        await world.service.disconnected(b, lost=False)

    world.backend.hook = old_connection_says_goodbye
    from signaling.errors import TooManyRooms

    with pytest.raises(TooManyRooms):
        await world.service.handle(world.session(), parse_request(
            "join", [{"room": "s", "resume": ack["resumeToken"]}], max_relay_bytes=10))
    assert await world.service.expire() == 1  # gone at the next reap, not kept for good
    assert [p["peerId"] for p in world.events(a.peer_id, "peer-left")] == [b.peer_id]
    assert await world.backend.counts() == (1, 1)


def _members(world: World, room: str) -> list[str]:
    return [m.peer_id for m in world.backend._rooms.get(room, {}).values()]


@pytest.mark.parametrize("connection", ["lost", "open"])
async def test_a_kick_during_a_resume_wins(connection: str) -> None:
    """Before: the kick forgot the claimed peer and the resume's join put it
    back in the room, listed for good (memory); or the kick's KICK waited in
    the resume's box and was dropped there as a control, so the peer came
    back (Redis)."""
    world = await _hooked_world()
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    if connection == "lost":
        await world.service.disconnected(b, lost=True)

    async def operator_kicks_b() -> None:
        await world.service.kick("r", b.peer_id)

    world.backend.hook = operator_kicks_b
    with pytest.raises(ResumeExpired, match="kicked"):
        await world.do(world.session(), "join", {"room": "r", "resume": ack["resumeToken"]})
    assert _members(world, "r") == [a.peer_id]
    assert world.events(a.peer_id, "peer-left") == [{"room": "r", "peerId": b.peer_id, "reason": "kicked"}]
    with pytest.raises(ResumeExpired):
        await world.do(world.session(), "join", {"room": "r", "resume": ack["resumeToken"]})
    if connection == "open":  # its old connection is handed the KICK that ends it
        assert [e for e, _ in world.inbox[b.peer_id]][-1:] == [KICK]
        await world.service.kicked(b)
    world.clock.now += 10**6
    assert await world.service.expire() == 0
    assert len(world.events(a.peer_id, "peer-left")) == 1
    assert world.backend._peers.keys() == {a.peer_id}


async def test_a_kick_as_the_connection_drops_still_wins(world: World) -> None:
    """The KICK reaches no connection (it is closing), then the drop keeps the
    peer for its grace. Before: it stayed listed and its token resumed it."""
    a, b = world.session(), world.session()
    await world.do(a, "join", {"room": "r"})
    ack = await world.do(b, "join", {"room": "r"})
    await world.service.kick("r", b.peer_id)  # the sink here acts on nothing, as a closing connection
    await world.service.disconnected(b, lost=True)
    assert _members(world, "r") == [a.peer_id]
    with pytest.raises(ResumeExpired):
        await world.do(world.session(), "join", {"room": "r", "resume": ack["resumeToken"]})
    world.clock.now += 10**6
    await world.service.expire()
    assert world.events(a.peer_id, "peer-left") == [{"room": "r", "peerId": b.peer_id, "reason": "kicked"}]
    assert world.backend._peers.keys() == {a.peer_id}
