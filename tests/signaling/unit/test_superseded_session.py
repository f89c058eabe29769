"""A peer's old connection ends after the peer was resumed on a new one
(docs/reliability.md, bug 7).

The service over the memory backend with a fake clock; no adapter, so nothing
unbinds the old session when the new one resumes its peer: that is the case
of an old connection whose end was already under way when the resume landed,
or that ends on another node. Its end must act on nothing: no ``peer-left``,
the peer keeps its rooms past the grace, and its new connection's own end
still works.
"""

from __future__ import annotations

import pytest

from signaling.errors import RoomFull
from signaling.protocol import parse_request
from signaling.service import Session
from tests.signaling.unit.test_service import World


async def resumed_elsewhere(world: World) -> tuple[Session, Session, Session]:
    """``watcher`` and ``old`` in room r (``old`` also in s); ``new`` resumes ``old``'s
    peer before ``old``'s end was seen."""
    watcher, old = world.session(), world.session()
    await world.do(watcher, "join", {"room": "r"})
    ack = await world.do(old, "join", {"room": "r"})
    await world.do(old, "join", {"room": "s"})
    new = world.session()
    back = await world.do(new, "join", {"room": "r", "resume": ack["resumeToken"]})
    assert back["resumed"] is True and new.peer_id == old.peer_id
    assert old.registered  # no adapter here: the old session was not told
    return watcher, old, new


@pytest.mark.parametrize("lost", [True, False], ids=["old_lost", "old_left"])
async def test_old_connection_ending_after_a_resume_changes_nothing(lost: bool) -> None:
    world = await World().start()
    watcher, old, new = await resumed_elsewhere(world)
    await world.service.disconnected(old, lost=lost)
    assert world.events(watcher.peer_id, "peer-left") == []
    world.clock.now += world.service.settings.resume_grace + 1
    assert await world.service.expire() == 0
    assert world.events(watcher.peer_id, "peer-left") == []
    assert sorted(await world.backend.rooms_of(new.peer_id)) == ["r", "s"]
    # the resumed peer is live: a signal reaches it at once
    assert await world.do(watcher, "signal", {"room": "r", "to": new.peer_id, "data": {"x": 1}}) == {"ok": True}
    assert world.events(new.peer_id, "signal")[-1]["data"] == {"x": 1}
    # and its own connection's end still works: lost, then gone after the grace
    await world.service.disconnected(new, lost=True)
    world.clock.now += world.service.settings.resume_grace
    assert await world.service.expire() == 1
    assert world.events(watcher.peer_id, "peer-left") == [
        {"room": "r", "peerId": new.peer_id, "reason": "disconnected"}
    ]
    assert await world.backend.counts() == (1, 1)


async def test_resumed_peer_leaving_on_purpose_still_leaves() -> None:
    world = await World().start()
    watcher, old, new = await resumed_elsewhere(world)
    await world.service.disconnected(old, lost=False)
    await world.service.disconnected(new, lost=False)
    assert world.events(watcher.peer_id, "peer-left") == [
        {"room": "r", "peerId": new.peer_id, "reason": "left"}
    ]
    assert await world.backend.counts() == (1, 1)


async def test_a_failed_resume_leaves_the_old_connection_in_charge() -> None:
    """A resume that fails rotates the token back to the one presented: the
    connection that held it before still speaks for the peer."""
    world = await World(max_peers_per_room=2).start()
    watcher, old = world.session(), world.session()
    await world.do(watcher, "join", {"room": "r"})
    ack = await world.do(old, "join", {"room": "r"})
    for _ in range(2):
        await world.do(world.session(), "join", {"room": "full"})
    with pytest.raises(RoomFull):
        await world.service.handle(
            world.session(),
            parse_request("join", [{"room": "full", "resume": ack["resumeToken"]}], max_relay_bytes=10),
        )
    await world.service.disconnected(old, lost=False)
    assert world.events(watcher.peer_id, "peer-left") == [
        {"room": "r", "peerId": old.peer_id, "reason": "left"}
    ]
