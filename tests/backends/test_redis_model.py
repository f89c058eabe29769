"""What the Redis backend costs Redis: each bound here failed before it was built (issue 13)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from signaling.backends.base import Delivery, Member
from signaling.backends.redis import CLAIM_BYTES, BackendUnavailable, RedisBackend
from signaling.backends.redis_scripts import INBOX_MAX_ENTRIES
from tests.backends.conftest import NEEDS_REDIS, Nodes, StartedNode, resume
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


async def stored(client: aioredis.Redis, prefix: str) -> int:
    """Bytes Redis holds for the keys under ``prefix`` (``MEMORY USAGE``, exact;
    ``used_memory`` would count client buffers and the Lua heap too)."""
    total = 0
    for key in await client.keys(f"{prefix}*"):
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
    before = await stored(client, made.prefix)
    for n in range(4):
        payload = {"room": "r", "from": "a", "event": "big", "data": bytes([n]) * MIB}
        await one.backend.deliver([Delivery(pid, "relay", payload, MIB, True) for pid in pids])
    grown = await stored(client, made.prefix) - before
    assert 4 * MIB < grown < 8 * MIB, f"Redis grew by {grown / MIB:.1f} MiB"
    # each lost peer still gets all four, in order, once
    resumed = await resume(one.backend, "tok-lost3", "new")
    assert [d.payload["data"][:1] for d in resumed.kept] == [bytes([n]) for n in range(4)]
    # the others keep theirs; the last one out frees the message
    for pid in pids:
        if pid != "lost3":
            await resume(one.backend, f"tok-{pid}", f"new-{pid}")
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
    await resume(two.backend, "tok-c", "tok-c2")
    await resume(two.backend, f"tok-{pids[0]}", "tok-l0")
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


async def test_a_failed_resume_puts_shared_mail_back_with_expiries(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """A release on another node writes the peer's mail back: kept messages still
    counted right (the last one out frees each), every key with an expiry."""
    _, made, client = own
    one, two = await made(), await made()
    await one.backend.register("a", "tok-a")
    await one.backend.join("r", Member("a", {}, True), 16)
    pids = await lost_peers(one, "r", 3)
    payload = {"room": "r", "from": "a", "event": "e", "data": b"\x00" * 100}
    await one.backend.deliver([Delivery(pid, "relay", payload, 120, True) for pid in pids])
    claimed = await two.backend.resume("tok-lost0", "tok-x")
    await two.backend.release(claimed, "tok-lost0", "tok-x")
    without = [k for k in await client.keys(f"{made.prefix}*") if await client.pttl(k) < 0]
    assert without == []
    for pid in pids:
        again = await resume(one.backend, f"tok-{pid}", f"new-{pid}")
        assert [d.payload for d in again.kept] == [payload] and again.dropped == 0
    assert await client.keys(f"{made.prefix}msg:*") == []


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
    reader._tasks[1].cancel()  # b's node stops reading: 200 entries wait in its inbox
    with pytest.raises(asyncio.CancelledError):
        await reader._tasks[1]
    for n in range(200):
        await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": n}, 10)])
    await two.backend.register("d", "tok-d")
    await two.backend.join("r", Member("d", {}, True), 16)
    await client.config_resetstat()
    await two.backend.lose("d", time.time() + 30, "tok-d")
    await resume(one.backend, "tok-d", "tok-d2")
    stats = await client.info("commandstats")
    assert "cmdstat_xrange" not in stats
    # with something waiting for it, the pending entries still move, in order
    await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": 200}, 10)])
    await two.backend.lose("b", time.time() + 30, "tok-b")
    resumed = await resume(one.backend, "tok-b", "tok-b2")
    assert [d.payload["n"] for d in resumed.kept] == list(range(201))


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


async def test_a_node_far_behind_refuses_more_rather_than_grow_its_inbox(
    own: tuple[RedisServer, Nodes, aioredis.Redis],
) -> None:
    """Before: a node that stopped reading let its inbox grow without bound."""
    _, made, client = own
    one, two = await two_in_room(made)
    reader = two.backend
    assert isinstance(reader, RedisBackend)
    reader._tasks[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader._tasks[1]
    for n in range(INBOX_MAX_ENTRIES):
        await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": n}, 10)])
    with pytest.raises(BackendUnavailable):
        await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": -1}, 10)])
    assert await client.xlen(f"{made.prefix}inbox:{reader.node_id}") == INBOX_MAX_ENTRIES
    while await reader._claim():
        pass
    assert [d.payload["n"] for d in two.sink.to("b")] == list(range(INBOX_MAX_ENTRIES))
    await one.backend.deliver([Delivery("b", "relay", {"room": "r", "n": INBOX_MAX_ENTRIES}, 10)])
    await reader._claim()
    assert two.sink.to("b")[-1].payload["n"] == INBOX_MAX_ENTRIES
