"""The backends' admin operations (issue 16) (room_list, peek, forget_lost), one contract for
the memory and the Redis backend, on one node and across two Redis nodes."""

from __future__ import annotations

import pytest

from signaling.backends.base import Member
from signaling.errors import ResumeExpired
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
    # a connected peer is its node's to end
    assert await a.forget_lost("p2") is None and await b.forget_lost("p2") is None
    assert await b.is_member("s", "p2")
    # a lost one may be forgotten from any node, and cannot resume after
    await b.lose("p2", 1e12, "tok-2")
    assert {m.peer_id: up for m, up in await a.peek("r")}["p2"] is False
    departures = await a.forget_lost("p2")
    assert departures is not None
    assert sorted((d.room, d.remaining) for d in departures) == [("r", ["p1"]), ("s", [])]
    assert sorted(await a.room_list(100)) == [("r", 1)]
    with pytest.raises(ResumeExpired):
        await b.resume("tok-2", "tok-new")
    assert await a.forget_lost("nobody") == []


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
