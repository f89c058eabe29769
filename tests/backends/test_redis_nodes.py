"""What only the Redis backend does: several nodes on one Redis, its loss and return."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from signaling.backends.base import Delivery, Member
from signaling.backends.redis import BackendUnavailable, RedisBackend, pack, unpack
from signaling.errors import RoomFull
from tests.backends.conftest import NEEDS_REDIS, Nodes, StartedNode, resume
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.redis, NEEDS_REDIS]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds (heartbeat-driven state has no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def crash(node: StartedNode) -> None:
    """As kill -9: the node stops at once and says nothing to Redis."""
    backend = node.backend
    assert isinstance(backend, RedisBackend)
    backend._closing = True
    backend._up.set()
    for task in backend._tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    backend._tasks = []
    backend._down = "crashed"  # close() must not tell Redis either


def relay(sender: str, to: str, n: int) -> Delivery:
    return Delivery(to, "relay", {"room": "r", "from": sender, "event": "n", "data": {"n": n, "b": bytes([n % 256])}}, 8)


async def two_in_room(nodes: Nodes, capacity: int = 8) -> tuple[StartedNode, StartedNode]:
    one, two = await nodes(), await nodes()
    await one.backend.register("a", "tok-a")
    await two.backend.register("b", "tok-b")
    await one.backend.join("r", Member("a", {}, True), capacity)
    await two.backend.join("r", Member("b", {}, True), capacity)
    return one, two


def test_codec_keeps_bytes_and_nul_keys() -> None:
    values = [
        {"a": [1, 2.5, None, True, "é\U0001f600"], "b": b"\x00\x01", "c": {"d": bytearray(b"x")}},
        {"\x00b": "not bytes", "x": b"yes"},
        {"\x00\x00b": {"\x00b": b"z"}},
        b"",
        "\ud800",
    ]
    for value in values:
        expected = {"c": {"d": b"x"}, **value} if isinstance(value, dict) and "c" in value else value
        assert unpack(pack(value)) == expected


async def test_cross_node_order_and_binary(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    for n in range(300):
        await one.backend.deliver([relay("a", "b", n)])
    got = await two.sink.wait("b", 300)
    assert [d.payload["data"] for d in got] == [{"n": n, "b": bytes([n % 256])} for n in range(300)]
    assert one.sink.to("b") == []
    # a room-wide message to peers on both nodes: one entry per node
    await one.backend.register("c", "tok-c")
    await one.backend.join("r", Member("c", {}, True), 8)
    shared = {"room": "r", "from": "x", "event": "all", "data": b"\xff" * 10}
    await two.backend.deliver([Delivery("a", "relay", shared, 10), Delivery("c", "relay", shared, 10)])
    assert (await one.sink.wait("a", 1))[0].payload == shared
    assert (await one.sink.wait("c", 1))[0].payload == shared


async def test_route_batches_keep_each_senders_order(redis_nodes: Nodes) -> None:
    """One caller's deliveries back to back (each finds the flusher that sent
    the last one just ending), and many callers at once: each goes out, in
    its sender's order."""
    one, two = await two_in_room(redis_nodes)
    for n in range(20):
        await asyncio.wait_for(one.backend.deliver([relay("a", "b", n)]), 5)
    senders = [f"s{i}" for i in range(10)]

    async def send(sender: str) -> None:
        for n in range(20, 60):
            await one.backend.deliver([relay(sender, "b", n)])

    await asyncio.wait_for(asyncio.gather(*(send(s) for s in senders)), 20)
    got = await two.sink.wait("b", 20 + 40 * len(senders))
    assert [d.payload["data"]["n"] for d in got[:20]] == list(range(20))
    for sender in senders:
        assert [d.payload["data"]["n"] for d in got if d.payload["from"] == sender] == list(range(20, 60))


async def test_join_race_across_nodes(redis_nodes: Nodes) -> None:
    one, two = await redis_nodes(), await redis_nodes()
    backends = [one.backend, two.backend]
    for i in range(12):
        await backends[i % 2].register(f"p{i}", f"t{i}")

    async def attempt(i: int) -> bool:
        try:
            await backends[i % 2].join("race", Member(f"p{i}", {}, True), 3)
        except RoomFull:
            return False
        return True

    won = await asyncio.gather(*(attempt(i) for i in range(12)))
    assert sum(won) == 3
    assert len(await one.backend.members("race")) == 3


async def test_isolation_across_rooms(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    await two.backend.register("z", "tok-z")
    await two.backend.join("other", Member("z", {}, True), 8)
    assert not await one.backend.is_member("r", "z")
    assert not await one.backend.is_member("other", "b")
    assert [m.peer_id for m in await one.backend.members("other")] == ["z"]


async def test_resume_on_the_other_node_keeps_mail(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    await one.backend.lose("a", deadline=time.time() + 60, token="tok-a")
    for n in range(5):
        await two.backend.deliver([relay("b", "a", n)])
    resumed = await resume(two.backend, "tok-a", "tok-a2")
    assert resumed.peer_id == "a" and resumed.rooms == ["r"]
    assert [d.payload["data"]["n"] for d in resumed.kept] == list(range(5))
    assert await two.backend.is_member("r", "a")
    await two.backend.deliver([relay("b", "a", 99)])  # now local on two
    assert [d.payload["data"]["n"] for d in await two.sink.wait("a", 1)] == [99]
    await one.backend.deliver([relay("x", "a", 100)])  # from one: crosses to two
    assert [d.payload["data"]["n"] for d in await two.sink.wait("a", 2)] == [99, 100]


async def test_live_resume_elsewhere_evicts_the_old_node(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    resumed = await resume(two.backend, "tok-a", "tok-a2")  # one never saw it go
    assert resumed.peer_id == "a"
    # one lets go once it reads the eviction from its inbox
    await eventually(lambda: _not_local(one.backend, "a"))
    await one.backend.deliver([relay("x", "a", 1)])
    assert [d.payload["data"]["n"] for d in await two.sink.wait("a", 1)] == [1]
    # the old connection's end changes nothing
    await one.backend.lose("a", deadline=time.time(), token="tok-a")
    assert await one.backend.forget("a", token="tok-a") == []
    assert await two.backend.is_member("r", "a")


async def _not_local(backend: object, peer_id: str) -> bool:
    assert isinstance(backend, RedisBackend)
    return peer_id not in backend._local


async def test_dead_node_peers_are_lost_then_expire_once(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)  # node TTL 1 s, grace 1 s
    three = await redis_nodes()
    await crash(one)
    for n in range(3):  # sent before anyone knows: wait in the dead node's inbox
        await two.backend.deliver([relay("b", "a", n)])
    found: list[tuple[StartedNode, str]] = []

    async def gone() -> bool:
        for node in (two, three):
            found.extend((node, pid) for pid in await node.backend.expired(time.time()))
        return bool(found)

    await eventually(gone, timeout=10)
    assert [pid for _, pid in found] == ["a"]
    # Whichever node it came out on finishes it (the other may not: it was not handed out there).
    departures = await found[0][0].backend.forget("a")
    assert [(d.room, d.remaining) for d in departures] == [("r", ["b"])]


async def test_expiry_cut_off_by_redis_is_finished_later(redis_nodes: Nodes) -> None:
    """``expired`` hands each peer out once, cluster-wide; when Redis cannot be
    reached for its ``forget``, the peer comes out again once Redis answers,
    or its record and rooms would stay for good (docs/reliability.md, bug 6)."""
    b = (await redis_nodes()).backend
    assert isinstance(b, RedisBackend)
    await b.register("c", "tok-c")
    await b.join("r", Member("c", {}, True), 8)
    await b.lose("c", deadline=100.0, token="tok-c")
    assert await b.expired(100.0) == ["c"]
    b._down = "unreachable for this forget"  # no await until it is back
    assert await b.forget("c") == []
    b._down = None
    assert await b.expired(101.0) == ["c"]
    assert [d.room for d in await b.forget("c")] == ["r"]
    assert await b.expired(102.0) == []
    assert await b.counts() == (0, 0)


async def test_dead_node_peer_resumes_elsewhere_with_its_mail(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    await crash(one)
    for n in range(3):
        await two.backend.deliver([relay("b", "a", n)])

    async def reaped() -> bool:
        return bool(await two.backend._redis.zscore(f"{redis_nodes.prefix}lost", "a"))

    await eventually(reaped)
    await two.backend.deliver([relay("b", "a", 3)])
    resumed = await resume(two.backend, "tok-a", "tok-a2")
    assert [d.payload["data"]["n"] for d in resumed.kept] == [0, 1, 2, 3]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def own_nodes(own_redis: RedisServer) -> AsyncIterator[Nodes]:
    made = Nodes("redis", own_redis.url, resume_grace=5.0, node_ttl=1.0)
    yield made
    await made.close()


async def local_c_then_redis_down(one: StartedNode, own_redis: RedisServer) -> None:
    """Peer ``c`` joins "r" on node ``one``, then Redis stops and ``one`` notices."""
    await one.backend.register("c", "tok-c")
    await one.backend.join("r", Member("c", {}, True), 8)
    own_redis.stop()

    async def down() -> bool:
        return await one.backend.unavailable_reason() is not None

    await eventually(down)


async def test_redis_restart_local_goes_on_and_state_comes_back(own_redis: RedisServer, own_nodes: Nodes) -> None:
    one, two = await two_in_room(own_nodes)
    await local_c_then_redis_down(one, own_redis)
    # local delivery goes on, membership of local peers is known
    assert await one.backend.is_member("r", "c")
    await one.backend.deliver([relay("a", "c", 1)])
    assert len(await one.sink.wait("c", 1)) == 1
    # a route that needs Redis fails loudly
    with pytest.raises(BackendUnavailable):
        await one.backend.deliver([relay("a", "b", 2)])
    with pytest.raises(BackendUnavailable):
        await one.backend.is_member("r", "b")
    with pytest.raises(BackendUnavailable):
        await one.backend.members("r")  # b (remote) is in it
    own_redis.start()  # same port, empty

    async def up() -> bool:
        return all([await n.backend.unavailable_reason() is None for n in (one, two)])

    await eventually(up)
    assert sorted(m.peer_id for m in await two.backend.members("r")) == ["a", "b", "c"]
    await one.backend.deliver([relay("a", "b", 3)])
    assert [d.payload["data"]["n"] for d in await two.sink.wait("b", 1)] == [3]
    await one.backend.lose("a", deadline=time.time() + 60, token="tok-a")
    assert (await resume(two.backend, "tok-a", "t2")).peer_id == "a"


async def test_redis_down_at_start_decides_for_no_room_then_attaches(own_redis: RedisServer) -> None:
    """A node that has never seen a room in Redis cannot know who is in it
    elsewhere: while Redis is away it answers ``unavailable`` for it, and
    serves it as usual once Redis is there."""
    own_redis.stop()
    made = Nodes("redis", own_redis.url, resume_grace=5.0, node_ttl=1.0)
    try:
        one = await made()
        assert await one.backend.unavailable_reason() is not None
        await one.backend.register("a", "tok-a")
        await one.backend.register("b", "tok-b")
        with pytest.raises(BackendUnavailable):
            await one.backend.join("r", Member("a", {}, True), 8)
        own_redis.start()

        async def up() -> bool:
            return await one.backend.unavailable_reason() is None

        await eventually(up)
        await one.backend.join("r", Member("a", {}, True), 8)
        assert [m.peer_id for m in (await one.backend.join("r", Member("b", {}, True), 8)).others] == ["a"]
        two = await made()
        assert sorted(m.peer_id for m in await two.backend.members("r")) == ["a", "b"]
        await two.backend.register("c", "tok-c")
        await two.backend.join("r", Member("c", {}, True), 8)
        await two.backend.deliver([relay("c", "a", 2)])
        assert len(await one.sink.wait("a", 1)) == 1
    finally:
        await made.close()


async def test_an_unseen_room_is_unavailable_while_redis_is_away(own_redis: RedisServer, own_nodes: Nodes) -> None:
    """Before the fix, a node cut off from Redis let anyone found a room it had
    never seen, though its members could be on other nodes."""
    one, _ = await two_in_room(own_nodes)
    await local_c_then_redis_down(one, own_redis)
    await one.backend.register("d", "tok-d")
    with pytest.raises(BackendUnavailable):
        await one.backend.join("elsewhere", Member("d", {}, True), 8)
    with pytest.raises(BackendUnavailable):  # b (on two) is in r: not one's to decide
        await one.backend.join("r", Member("d", {}, True), 8)


async def test_departure_while_redis_is_away_reaches_the_other_nodes_after(own_redis: RedisServer, own_nodes: Nodes) -> None:
    one, two = await two_in_room(own_nodes)
    await local_c_then_redis_down(one, own_redis)
    departures = await one.backend.forget("c", token="tok-c")  # c left on purpose: a is told at once
    assert [(d.room, d.remaining) for d in departures] == [("r", ["a"])]
    own_redis.start()
    left = await two.sink.wait("b", 1, "peer-left")
    assert [d.payload for d in left] == [{"room": "r", "peerId": "c", "reason": "left"}]
    assert sorted(m.peer_id for m in await two.backend.members("r")) == ["a", "b"]
    assert one.sink.to("a", "peer-left") == []  # the service told a already, once


async def test_a_lose_overtaken_by_a_resume_on_its_node_changes_nothing(redis_nodes: Nodes) -> None:
    """The old connection's lose has let go of the peer and waits for the node's
    lock while the peer resumes on a new connection on the same node: the lose
    must then find the new token and do nothing, and what the node took from its
    inbox for the peer meanwhile (parked for the lose) goes to the resumed peer
    first, not nowhere (docs/reliability.md, bug 7)."""
    one, two = await two_in_room(redis_nodes)
    backend = one.backend
    assert isinstance(backend, RedisBackend)
    async with backend._locked():  # held by this task (re-entrant for it)
        losing = asyncio.create_task(backend.lose("a", time.time() + 60, "tok-a"))

        async def waiting() -> bool:
            return "a" in backend._losing

        await eventually(waiting)
        for n in range(3):  # a is still one's in Redis: into one's inbox
            await two.backend.deliver([relay("b", "a", n)])
        assert await backend._claim() == 0  # all taken while a's lose is under way: parked
        assert len(backend._parked["a"]) == 3
        resumed = await resume(backend, "tok-a", "tok-a2")
    await asyncio.wait_for(losing, 10)
    assert [d.payload["data"]["n"] for d in resumed.kept] == [0, 1, 2]
    await two.backend.deliver([relay("b", "a", 3)])
    assert [d.payload["data"]["n"] for d in await one.sink.wait("a", 1)] == [3]
    assert await one.backend.expired(time.time() + 3600) == []
    assert await two.backend.is_member("r", "a")


async def test_a_stale_lose_or_forget_while_redis_is_away_keeps_the_resumed_peer(redis_nodes: Nodes) -> None:
    """While Redis cannot be reached the node acts on its mirror alone: the end of
    a's old connection must not drop the mirror of a resumed on this node since."""
    one, two = await two_in_room(redis_nodes)
    backend = one.backend
    assert isinstance(backend, RedisBackend)
    await resume(backend, "tok-a", "tok-a2")  # a's new connection, on the same node
    backend._tasks[0].cancel()  # the heartbeat: this test says when Redis is back
    backend._mark_down(ConnectionError("cut off for this test"))
    await backend.lose("a", time.time(), "tok-a")
    assert await backend.forget("a", token="tok-a") == []
    assert await backend.is_member("r", "a")  # answered from the mirror
    await backend.deliver([relay("x", "a", 1)])  # local delivery goes on
    assert [d.payload["data"]["n"] for d in await one.sink.wait("a", 1)] == [1]
    await backend._beat()
    assert await backend.unavailable_reason() is None
    assert sorted(m.peer_id for m in await two.backend.members("r")) == ["a", "b"]
    assert two.sink.to("b", "peer-left") == [] and backend._left_later == []
    assert await backend.expired(time.time() + 3600) == []
    await two.backend.deliver([relay("b", "a", 2)])
    assert [d.payload["data"]["n"] for d in await one.sink.wait("a", 2)] == [1, 2]


async def test_an_old_connection_leaving_while_cut_off_is_not_told_once_resumed_elsewhere(
    redis_nodes: Nodes,
) -> None:
    """Node one cannot reach Redis; its client comes back on node two, then the
    old connection on one says goodbye. One cannot know yet, so it lets go of its
    mirror; once Redis answers again it must not tell the rooms that a left:
    Redis places a on two (docs/reliability.md, bug 7)."""
    one, two = await two_in_room(redis_nodes)
    backend = one.backend
    assert isinstance(backend, RedisBackend)
    backend._tasks[0].cancel()  # the heartbeat: this test says when Redis is back
    backend._mark_down(ConnectionError("cut off for this test"))
    assert (await resume(two.backend, "tok-a", "tok-a2")).peer_id == "a"
    departures = await backend.forget("a", token="tok-a")  # one still has tok-a for it
    assert [(d.room, d.remaining) for d in departures] == [("r", [])]  # no one on one to tell
    await backend._beat()
    assert await backend.unavailable_reason() is None
    assert backend._left_later == [] and backend._left_while_down == {}
    assert sorted(m.peer_id for m in await two.backend.members("r")) == ["a", "b"]
    await one.backend.deliver([relay("x", "a", 1)])
    assert [d.payload["data"]["n"] for d in await two.sink.wait("a", 1)] == [1]


async def test_a_failed_resume_gives_a_peer_back_to_the_node_of_its_open_connection(
    redis_nodes: Nodes,
) -> None:
    """Before: the peer came back lost, with a fresh grace from the failure (so
    repeated failures kept it), and its open connection on node one was cut off."""
    one, two = await two_in_room(redis_nodes)
    claimed = await two.backend.resume("tok-a", "tok-a2")  # a's connection on one is open
    await eventually(lambda: _not_local(one.backend, "a"))  # one let go of it
    await two.backend.deliver([relay("b", "a", 1)])  # during the claim: kept for the resume
    await two.backend.release(claimed, "tok-a", "tok-a2")
    # back on one, connected, with what came meanwhile, then what comes next
    assert [d.payload["data"]["n"] for d in await one.sink.wait("a", 1)] == [1]
    await two.backend.deliver([relay("b", "a", 2)])
    assert [d.payload["data"]["n"] for d in await one.sink.wait("a", 2)] == [1, 2]
    assert {m.peer_id: up for m, up in await two.backend.peek("r")}["a"] is True
    assert await two.backend.expired(time.time() + 3600) == []  # no grace started
    assert await one.backend.is_member("r", "a")
    # its connection on one still speaks for it: losing it keeps it for the grace
    await one.backend.lose("a", deadline=time.time() + 1000, token="tok-a")
    assert await two.backend.expired(time.time() + 10) == []
    again = await resume(two.backend, "tok-a", "tok-a3")
    assert again.peer_id == "a" and again.dropped == 0


async def test_a_failed_resume_keeps_the_end_of_the_connection_it_took_the_peer_from(
    redis_nodes: Nodes,
) -> None:
    """That connection on node one ends while the resume on two waits: the
    failed resume leaves the peer lost from then, with that deadline."""
    one, two = await two_in_room(redis_nodes)
    claimed = await two.backend.resume("tok-a", "tok-a2")
    deadline = time.time() + 1000
    await one.backend.lose("a", deadline=deadline, token="tok-a")
    await two.backend.release(claimed, "tok-a", "tok-a2")
    assert {m.peer_id: up for m, up in await two.backend.peek("r")}["a"] is False
    assert await two.backend.expired(deadline - 1) == []
    assert await two.backend.expired(deadline) == ["a"]


async def test_a_failed_resume_after_its_old_connection_left_lets_the_peer_go(redis_nodes: Nodes) -> None:
    one, two = await two_in_room(redis_nodes)
    claimed = await two.backend.resume("tok-a", "tok-a2")
    assert await one.backend.forget("a", token="tok-a") == []  # the resume holds it
    await two.backend.release(claimed, "tok-a", "tok-a2")
    assert await two.backend.expired(time.time() + 1) == ["a"]  # goes at the next reap
