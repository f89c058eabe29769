"""The backends' admin operations (issue 16) (room_list, peek, kick), one contract for
the memory and the Redis backend, on one node and across two Redis nodes."""

from __future__ import annotations

import pytest

from signaling.backends.base import Backend, Member
from signaling.errors import ResumeExpired
from signaling.protocol import JoinRequest
from signaling.service import SignalingService
from signaling.settings import Settings
from tests.backends.conftest import NEEDS_REDIS, Nodes


async def test_list_peek_and_forget_lost(nodes: Nodes) -> None:
    one = await nodes()
    two = await nodes()  # the same state: for Redis another node
    a, b = one.backend, two.backend
    await a.register("p1", "tok-1")
    await b.register("p2", "tok-2")
    await a.join("r", Member("p1", {"n": 1}, True), 8)
    await b.join("r", Member("p2", {}, False), 8)
    await b.join("s", Member("p2", {}, False), 8)
    for backend in (a, b):
        assert sorted(await backend.room_list(100)) == [("r", 2), ("s", 1)]
        assert len(await backend.room_list(1)) == 1
        assert sorted(await backend.peek("r"), key=lambda x: x[0].peer_id) == [
            (Member("p1", {"n": 1}, True), True), (Member("p2", {}, False), True)]
        assert await backend.peek("empty") == []
    # a lost one is forgotten from any node, and cannot resume after
    await b.lose("p2", 1e12, "tok-2")
    assert {m.peer_id: up for m, up in await a.peek("r")}["p2"] is False
    departures = await a.kick("p2")
    assert sorted((d.room, d.remaining) for d in departures) == [("r", ["p1"]), ("s", [])]
    assert sorted(await a.room_list(100)) == [("r", 1)]
    with pytest.raises(ResumeExpired):
        await b.resume("tok-2", "tok-new")
    assert await a.kick("nobody") == []


async def test_kick_of_a_connected_peer_takes_effect_at_once(nodes: Nodes) -> None:
    """From any node: out of every room and its token dead before its node
    hears of it; its connection's end (lost or left) brings nothing back."""
    a, b = (await nodes()).backend, (await nodes()).backend
    await two_peers(a, b)
    departures = await a.kick("p2")
    assert sorted((d.room, d.remaining) for d in departures) == [("r", ["p1"]), ("s", [])]
    assert [m.peer_id for m, _ in await a.peek("r")] == ["p1"]
    with pytest.raises(ResumeExpired):
        await a.resume("tok-2", "tok-new")
    with pytest.raises(ResumeExpired):  # its connection, not yet closed, may not join again
        await b.join("t", Member("p2", {}, False), 8)
    # the kick and the connection's drop coincide: the KICK is never acted on
    await b.lose("p2", 1e12, "tok-2")
    with pytest.raises(ResumeExpired):
        await a.resume("tok-2", "tok-new")
    assert [m.peer_id for m, _ in await a.peek("r")] == ["p1"]
    assert await a.expired(2e12) in ([], ["p2"])
    assert await a.forget("p2") == []
    assert sorted(await a.room_list(100)) == [("r", 1)]


async def two_peers(a: Backend, b: Backend) -> None:
    await a.register("p1", "tok-1")
    await b.register("p2", "tok-2")
    await a.join("r", Member("p1", {}, True), 8)
    await b.join("r", Member("p2", {}, False), 8)
    await b.join("s", Member("p2", {}, False), 8)


@pytest.mark.parametrize("when", ["before-join", "before-attach"])
async def test_kick_during_a_resume_wins(nodes: Nodes, when: str) -> None:
    """A resume under way (on another node for Redis) when the kick lands:
    before, the claimed peer looked connected and the kick was lost (Redis),
    or was forgotten and then re-added by the resume's join (memory)."""
    a, b = (await nodes()).backend, (await nodes()).backend
    await two_peers(a, b)
    await b.lose("p2", 1e12, "tok-2")
    resumed = await a.resume("tok-2", "tok-3")
    if when == "before-attach":
        await a.join("r", Member("p2", {}, False), 8)  # the resume's join of its room
    departures = await b.kick("p2")
    assert sorted((d.room, d.remaining) for d in departures) == [("r", ["p1"]), ("s", [])]
    if when == "before-join":
        with pytest.raises(ResumeExpired, match="kicked"):
            await a.join("r", Member("p2", {}, False), 8)
    with pytest.raises(ResumeExpired, match="kicked"):
        await a.attach("p2")
    await a.release(resumed, "tok-2", "tok-3")  # the resume fails: no token comes back
    for token in ("tok-2", "tok-3"):
        with pytest.raises(ResumeExpired):
            await b.resume(token, "tok-4")
    assert [m.peer_id for m, _ in await b.peek("r")] == ["p1"]
    assert await b.peek("s") == []
    assert await a.expired(2e12) in ([], ["p2"])  # Redis keeps the marked record to its deadline
    assert await a.forget("p2") == []  # nothing left to announce


@NEEDS_REDIS
@pytest.mark.redis
async def test_room_list_skips_rooms_whose_key_expired(redis_nodes: Nodes) -> None:
    import redis.asyncio as aioredis

    b = (await redis_nodes()).backend
    await b.register("p", "tok")
    for room in ("a", "b", "c"):
        await b.join(room, Member("p", {}, True), 8)
    direct = aioredis.from_url(redis_nodes.redis_url or "")
    try:  # as if their keys had expired: the room set still names them
        await direct.delete(f"{redis_nodes.prefix}room:a", f"{redis_nodes.prefix}room:b")
    finally:
        await direct.aclose()
    assert await b.room_list(1) == [("c", 1)]
    assert await b.room_list(10) == [("c", 1)]


@NEEDS_REDIS
@pytest.mark.redis
@pytest.mark.parametrize("connection", ["lost", "open"])
async def test_a_kick_during_a_resume_on_another_node_wins(redis_nodes: Nodes, connection: str) -> None:
    """The services of two nodes: b resumes on node one while an operator's kick
    runs on node two. Before: the claimed peer looked connected, the KICK went
    into the resume's box and was dropped there, and b came back."""
    one, two = await redis_nodes(), await redis_nodes()
    first, second = SignalingService(Settings(), one.backend), SignalingService(Settings(), two.backend)
    a, b = first.open_session(), second.open_session()
    await first.handle(a, JoinRequest("r", {}, True, None))
    ack = (await second.handle(b, JoinRequest("r", {}, True, None))).ack
    if connection == "lost":
        await second.disconnected(b, lost=True)
    real_rooms_of = one.backend.rooms_of

    async def kick_then_rooms_of(peer_id: str) -> list[str]:
        await second.kick("r", b.peer_id)  # lands while the resume's join waits
        return await real_rooms_of(peer_id)

    one.backend.rooms_of = kick_then_rooms_of  # type: ignore[method-assign]
    with pytest.raises(ResumeExpired, match="kicked"):
        await first.handle(first.open_session(), JoinRequest("r", {}, True, ack["resumeToken"]))
    one.backend.rooms_of = real_rooms_of  # type: ignore[method-assign]
    assert [m.peer_id for m in await one.backend.members("r")] == [a.peer_id]
    left = await one.sink.wait(a.peer_id, 1, "peer-left")
    assert [d.payload["reason"] for d in left] == ["kicked"]
    with pytest.raises(ResumeExpired):
        await first.handle(first.open_session(), JoinRequest("r", {}, True, ack["resumeToken"]))
    if connection == "open":  # its old connection, still open on node two, may not join it back
        with pytest.raises(ResumeExpired, match="kicked"):
            await second.handle(b, JoinRequest("t", {}, True, None))
    assert [m.peer_id for m in await two.backend.members("t")] == []
