"""What the Redis backend costs Redis: each bound here failed before it was built (issue 13)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from signaling.backends.base import Delivery, Member
from signaling.backends.redis import CLAIM_BYTES, RedisBackend
from tests.backends.conftest import NEEDS_REDIS, Nodes, StartedNode
from tests.backends.test_redis_nodes import crash, eventually, two_in_room
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.redis, NEEDS_REDIS]

MIB = 1024 * 1024


@pytest.fixture
async def own() -> AsyncIterator[tuple[RedisServer, Nodes, aioredis.Redis]]:
    """A Redis of the test's own (its memory and command counts are the test's alone)."""
    server = RedisServer()
    server.start()
    made = Nodes("redis", server.url, resume_grace=30.0, node_ttl=1.0)
    client = aioredis.Redis.from_url(server.url)
    try:
        yield server, made, client
    finally:
        await made.close()
        await client.aclose()
        server.close()


async def used_memory(client: aioredis.Redis, prefix: str) -> int:
    """Bytes the keys under ``prefix`` take (MEMORY USAGE, exact): unlike INFO's
    used_memory, blind to the query buffer a 1 MiB argument leaves behind and to
    the allocator's state, so the same data always measures the same."""
    total = 0
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        total += int(await client.memory_usage(key, samples=0) or 0)
    return total


async def lost_peers(node: StartedNode, room: str, count: int) -> list[str]:
    pids = [f"lost{i}" for i in range(count)]
    for pid in pids:
        await node.backend.register(pid, f"tok-{pid}")
        await node.backend.join(room, Member(pid, {}, True), 16)
        await node.backend.lose(pid, time.time() + 30, f"tok-{pid}")
    return pids


async def test_a_room_wide_relay_kept_for_lost_peers_is_stored_once(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """Four 1 MiB room-wide relays kept for 8 lost peers: about 4 MiB (base64: 5.3), not 32+."""
    _, made, client = own
    one = await made()
    await one.backend.register("a", "tok-a")
    await one.backend.join("r", Member("a", {}, True), 16)
    pids = await lost_peers(one, "r", 8)
    before = await used_memory(client, made.prefix)
    for n in range(4):
        payload = {"room": "r", "from": "a", "event": "big", "data": bytes([n]) * MIB}
        await one.backend.deliver([Delivery(pid, "relay", payload, MIB, True) for pid in pids])
    grown = await used_memory(client, made.prefix) - before
    assert 4 * MIB < grown < 8 * MIB, f"Redis grew by {grown / MIB:.1f} MiB"
    # each lost peer still gets all four, in order, once
    resumed = await one.backend.resume("tok-lost3", "new")
    assert [d.payload["data"][:1] for d in resumed.kept] == [bytes([n]) for n in range(4)]
    # the others keep theirs; the last one out frees the message
    for pid in pids:
        if pid != "lost3":
            await one.backend.resume(f"tok-{pid}", f"new-{pid}")
    assert await client.keys(f"{made.prefix}msg:*") == []


async def test_every_key_has_an_expiry(own: tuple[RedisServer, Nodes, aioredis.Redis]) -> None:
    """Before: 69 of 70 keys had none. Now a busy, then idle, cluster holds none without one."""
    _, made, client = own
    one, two = await two_in_room(made)
    pids = await lost_peers(two, "r", 3)
    await one.backend.deliver([Delivery(pid, "relay", {"room": "r", "n": 1}, 10) for pid in [*pids, "b"]])
    await two.sink.wait("b", 1)
    await one.backend.register("c", "tok-c")
    await one.backend.join("s", Member("c", {}, True), 16)
    await one.backend.lose("c", time.time() + 30, "tok-c")
    await two.backend.resume("tok-c", "tok-c2")
    await two.backend.resume(f"tok-{pids[0]}", "tok-l0")
    # a node dies with mail in its inbox: the survivor reaps it
    await crash(one)
    await two.backend.deliver([Delivery("a", "relay", {"room": "r", "n": 2}, 10)])
    async def reaped() -> bool:
        return await client.hget(f"{made.prefix}peer:a", "lost") is not None
    await eventually(reaped)
    keys = await client.keys(f"{made.prefix}*")
    assert len(keys) > 15
    without = [k for k in keys if await client.pttl(k) < 0]
    assert without == []


async def test_an_inbox_read_hands_out_a_bounded_number_of_bytes(redis_nodes: Nodes) -> None:
    """Before: a read took up to 500 entries to the connections in one go (500 MiB of 1 MiB relays)."""
    one, two = await two_in_room(redis_nodes)
    reader = two.backend
    assert isinstance(reader, RedisBackend)
    reader._tasks[1].cancel()  # stop its inbox reader: the entries wait
    with pytest.raises(asyncio.CancelledError):
        await reader._tasks[1]
    size = 512 * 1024
    for n in range(12):
        payload = {"room": "r", "from": "a", "event": "big", "data": bytes([n]) * size}
        await one.backend.deliver([Delivery("b", "relay", payload, size, True)])
    handed: list[int] = []

    async def note(deliveries: object) -> None:
        handed.append(sum(d.size for d in deliveries))  # type: ignore[attr-defined]

    two.sink.then = note
    while await reader._claim():
        pass
    assert len(handed) > 1 and max(handed) <= CLAIM_BYTES + size  # one entry at most past the bound
    assert [d.payload["data"][:1] for d in two.sink.to("b")] == [bytes([n]) for n in range(12)]


async def test_lose_and_resume_read_no_inbox_when_nothing_waits(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """Before: every lose and resume scanned the node's whole inbox."""
    _, made, client = own
    one, two = await two_in_room(made)
    reader = two.backend
    assert isinstance(reader, RedisBackend)
    reader._tasks[1].cancel()  # b's node stops reading: 300 entries wait in its inbox
    with pytest.raises(asyncio.CancelledError):
        await reader._tasks[1]
    for n in range(300):
        await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": n}, 10)])
    await two.backend.register("d", "tok-d")
    await two.backend.join("r", Member("d", {}, True), 16)
    await client.config_resetstat()
    await two.backend.lose("d", time.time() + 30, "tok-d")
    await one.backend.resume("tok-d", "tok-d2")
    stats = await client.info("commandstats")
    assert "cmdstat_xrange" not in stats
    # with something waiting for it, the pending entries still move, in order
    await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": 300}, 10)])
    await two.backend.lose("b", time.time() + 30, "tok-b")
    resumed = await one.backend.resume("tok-b", "tok-b2")
    assert [d.payload["n"] for d in resumed.kept] == list(range(301))


async def test_write_back_after_an_outage_keeps_the_room_capacity(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """Before: the write-back re-added every local member, past the room's capacity."""
    server, made, client = own
    one = await made()
    await one.backend.register("c", "tok-c")
    await one.backend.join("r", Member("c", {}, True), 2)
    one.backend._tasks[0].cancel()  # type: ignore[attr-defined]  # its heartbeat: the test beats it
    server.stop()
    with pytest.raises(Exception):  # noqa: B017 - any Redis error marks it down
        await one.backend.members("other")
    await one.backend.register("d", "tok-d")
    await one.backend.join("r", Member("d", {}, True), 2)  # decided locally: r had only c
    server.start()  # empty; another node takes a seat before one writes back
    two = await made()
    await two.backend.register("x", "tok-x")
    await two.backend.join("r", Member("x", {}, True), 2)
    await one.backend._beat()  # type: ignore[attr-defined]
    assert await one.backend.unavailable_reason() is None
    seats = await client.hkeys(f"{made.prefix}room:r")
    assert len(seats) == 2 and b"x" in seats
    out = {"c", "d"} - {s.decode() for s in seats}
    assert len(out) == 1
    assert [m.peer_id for m in (await one.backend.members("r"))] != []
    assert not await one.backend.is_member("r", out.pop())


async def test_what_one_loop_turn_sends_to_a_node_is_one_script_and_one_entry(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """Ten senders at once, 30 messages each, to b on the other node: every
    sender's order holds, and the node sent far fewer scripts and entries than messages."""
    _, made, client = own
    one, two = await two_in_room(made)
    await client.config_resetstat()

    async def sender(s: int) -> None:
        for n in range(30):
            payload = {"room": "r", "from": f"s{s}", "event": "n", "data": {"s": s, "n": n}}
            await one.backend.deliver([Delivery("b", "relay", payload, 20)])

    await asyncio.gather(*(sender(s) for s in range(10)))
    got = await two.sink.wait("b", 300)
    for s in range(10):
        assert [d.payload["data"]["n"] for d in got if d.payload["data"]["s"] == s] == list(range(30))
    stats = await client.info("commandstats")
    assert stats["cmdstat_xadd"]["calls"] <= 60
