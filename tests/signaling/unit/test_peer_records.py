"""Every way a peer can go ends with its record gone (docs/reliability.md, bug 6).

The service over the memory backend with a fake clock: each path a
connection can take (join, leave, join again, lost, resumed, expired, a
refused join or resume) must leave no peer record and no room behind once
the connection has ended and the grace is over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest

from signaling.backends.base import Delivery
from signaling.errors import ResumeExpired, RoomFull
from tests.signaling.unit.test_service import World

Path = Callable[[World], Awaitable[None]]


async def leave_then_disconnect(world: World) -> None:
    a = world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(a, "leave", {"room": "r"})
    await world.service.disconnected(a, lost=False)


async def leave_then_lost(world: World) -> None:
    """A peer whose grace runs out while it is in no room."""
    a = world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(a, "leave", {"room": "r"})
    await world.service.disconnected(a, lost=True)


async def join_again_after_leave_then_lost(world: World) -> None:
    a = world.session()
    await world.do(a, "join", {"room": "r"})
    await world.do(a, "leave", {"room": "r"})
    await world.do(a, "join", {"room": "s"})
    await world.service.disconnected(a, lost=True)


async def resumed_then_disconnect(world: World) -> None:
    a = world.session()
    ack = await world.do(a, "join", {"room": "r"})
    await world.service.disconnected(a, lost=True)
    back = world.session()
    await world.do(back, "join", {"room": "r", "resume": ack["resumeToken"]})
    await world.do(back, "leave", {"room": "r"})
    await world.service.disconnected(back, lost=False)


async def resumed_then_lost(world: World) -> None:
    a = world.session()
    ack = await world.do(a, "join", {"room": "r"})
    await world.service.disconnected(a, lost=True)
    back = world.session()
    await world.do(back, "join", {"room": "s", "resume": ack["resumeToken"]})
    await world.service.disconnected(back, lost=True)


async def refused_join_then_disconnect(world: World) -> None:
    others = [world.session(), world.session()]
    for other in others:
        await world.do(other, "join", {"room": "full"})
    a = world.session()
    with pytest.raises(RoomFull):
        await world.do(a, "join", {"room": "full"})
    await world.service.disconnected(a, lost=True)
    for other in others:
        await world.service.disconnected(other, lost=False)


async def refused_resume_then_join_then_disconnect(world: World) -> None:
    """A resume refused (room full) after a join refused: the connection keeps its own peer."""
    others = [world.session(), world.session()]
    for other in others:
        await world.do(other, "join", {"room": "full"})
    lost = world.session()
    ack = await world.do(lost, "join", {"room": "r"})
    await world.service.disconnected(lost, lost=True)
    a = world.session()
    with pytest.raises(RoomFull):
        await world.do(a, "join", {"room": "full"})
    with pytest.raises(RoomFull):
        await world.do(a, "join", {"room": "full", "resume": ack["resumeToken"]})
    await world.do(a, "join", {"room": "g"})
    await world.service.disconnected(a, lost=False)
    for other in others:
        await world.service.disconnected(other, lost=False)


PATHS = [
    leave_then_disconnect,
    leave_then_lost,
    join_again_after_leave_then_lost,
    resumed_then_disconnect,
    resumed_then_lost,
    refused_join_then_disconnect,
    refused_resume_then_join_then_disconnect,
]


@pytest.mark.parametrize("path", PATHS, ids=[p.__name__ for p in PATHS])
async def test_no_record_left_once_the_grace_is_over(path: Path) -> None:
    world = await World(max_peers_per_room=2).start()
    await path(world)
    world.clock.now += world.service.settings.resume_grace
    await world.service.expire()
    assert await world.backend.counts() == (0, 0)


async def test_a_failed_departure_does_not_strand_the_rest_of_the_round() -> None:
    """The backend returns each expired peer once: one departure that raises (a
    connection closing while it is handed ``peer-left``) must not leave the
    others of the same round in the records for good."""
    world = await World().start()
    watcher = world.session()
    await world.do(watcher, "join", {"room": "r"})
    lost = [world.session() for _ in range(3)]
    for session in lost:
        await world.do(session, "join", {"room": "r"})
        await world.service.disconnected(session, lost=True)
    handed = world._sink

    async def breaks_once(deliveries: Sequence[Delivery]) -> None:
        if any(d.event == "peer-left" for d in deliveries) and not broken:
            broken.append(True)
            raise RuntimeError("connection closed while sending")
        await handed(deliveries)

    broken: list[bool] = []
    world.backend._sink = breaks_once
    world.clock.now += world.service.settings.resume_grace
    assert await world.service.expire() == 3
    assert broken
    assert await world.service.expire() == 0
    assert await world.backend.counts() == (1, 1)
    assert sorted(p["peerId"] for p in world.events(watcher.peer_id, "peer-left")) == sorted(
        s.peer_id for s in lost[1:]
    )


async def test_a_peer_whose_expiry_is_under_way_cannot_be_resumed() -> None:
    """A resume that lands while the reaper is telling the rooms about that very
    peer would be forgotten right after: it must be refused instead."""
    world = await World().start()
    watcher = world.session()
    await world.do(watcher, "join", {"room": "r"})
    acks = []
    for _ in range(2):
        session = world.session()
        acks.append(await world.do(session, "join", {"room": "r"}))
        await world.service.disconnected(session, lost=True)
    handed = world._sink
    outcomes: list[str] = []

    async def resume_meanwhile(deliveries: Sequence[Delivery]) -> None:
        await handed(deliveries)
        if not outcomes and any(d.event == "peer-left" for d in deliveries):
            back = world.session()
            try:
                await world.do(back, "join", {"room": "r", "resume": acks[1]["resumeToken"]})
                outcomes.append("resumed")
                await world.do(back, "join", {"room": "q"})
                await world.service.disconnected(back, lost=False)
            except ResumeExpired:
                outcomes.append("resume-expired")

    world.backend._sink = resume_meanwhile
    world.clock.now += world.service.settings.resume_grace
    assert await world.service.expire() == 2
    assert outcomes == ["resume-expired"]
    assert await world.backend.counts() == (1, 1)
