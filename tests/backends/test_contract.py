"""One contract for every backend: the memory one and the Redis one alike."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from signaling.backends.base import Backend, Delivery, Member
from signaling.errors import ResumeExpired, RoomFull
from tests.backends.conftest import Nodes, resume


def member(pid: str, **meta: object) -> Member:
    return Member(pid, dict(meta), True)


async def test_join_lists_others_and_counts(nodes: Nodes) -> None:
    node = await nodes()
    b = node.backend
    await b.register("a", "tok-a")
    await b.register("b", "tok-b")
    first = await b.join("r", member("a", name="alice"), 4)
    assert first.others == [] and not first.already_member
    second = await b.join("r", Member("b", {}, False), 4)
    assert second.others == [Member("a", {"name": "alice"}, True)]
    again = await b.join("r", member("b"), 4)
    assert again.already_member and again.others == [Member("a", {"name": "alice"}, True)]
    assert sorted(m.peer_id for m in await b.members("r")) == ["a", "b"]
    assert await b.is_member("r", "a") and not await b.is_member("r", "zz")
    assert not await b.is_member("other", "a")
    await b.join("s", member("a"), 4)
    assert await b.rooms_of("a") == ["r", "s"]
    assert await b.counts() == (2, 2)


async def test_room_full(nodes: Nodes) -> None:
    b = (await nodes()).backend
    for pid in "abc":
        await b.register(pid, f"tok-{pid}")
    await b.join("r", member("a"), 2)
    await b.join("r", member("b"), 2)
    with pytest.raises(RoomFull):
        await b.join("r", member("c"), 2)
    assert not await b.is_member("r", "c")
    assert (await b.join("r", member("b"), 2)).already_member  # a re-join is not refused


async def test_leave(nodes: Nodes) -> None:
    b = (await nodes()).backend
    for pid in "ab":
        await b.register(pid, f"tok-{pid}")
        await b.join("r", member(pid), 4)
    departure = await b.leave("r", "a")
    assert departure is not None and departure.remaining == ["b"] and departure.room == "r"
    assert await b.leave("r", "a") is None
    assert await b.rooms_of("a") == []
    last = await b.leave("r", "b")
    assert last is not None and last.remaining == []
    assert (await b.counts())[0] == 0


async def test_deliver_in_order_with_binary(nodes: Nodes) -> None:
    node = await nodes()
    b = node.backend
    for pid in "ab":
        await b.register(pid, f"tok-{pid}")
        await b.join("r", member(pid), 4)
    sent = [
        Delivery("b", "relay", {"room": "r", "from": "a", "event": "e", "data": {"n": i, "bin": bytes([i])}}, 10)
        for i in range(50)
    ]
    for d in sent:
        await b.deliver([d])
    got = await node.sink.wait("b", 50)
    assert [d.payload for d in got] == [d.payload for d in sent]
    assert node.sink.to("a") == []


async def a_and_b_in_r_b_also_in_s(backend: Backend) -> None:
    for pid in "ab":
        await backend.register(pid, f"tok-{pid}")
        await backend.join("r", member(pid), 4)
    await backend.join("s", member("b"), 4)


async def test_lost_peer_keeps_mail_and_resumes_once(nodes: Nodes) -> None:
    node = await nodes()
    b = node.backend
    await a_and_b_in_r_b_also_in_s(b)
    await b.lose("b", deadline=2e9, token="tok-b")
    for i in range(3):
        await b.deliver([Delivery("b", "signal", {"room": "r", "from": "a", "data": {"i": i, "b": b"\x00\xff"}}, 20)])
    assert node.sink.to("b") == []
    assert await b.is_member("r", "b")  # still counts as in the room
    resumed = await resume(b, "tok-b", "tok-b2")
    assert resumed.peer_id == "b" and resumed.rooms == ["r", "s"] and resumed.dropped == 0
    assert [d.payload["data"] for d in resumed.kept] == [{"i": i, "b": b"\x00\xff"} for i in range(3)]
    assert all(d.event == "signal" and d.peer_id == "b" for d in resumed.kept)
    with pytest.raises(ResumeExpired):
        await resume(b, "tok-b", "tok-b3")  # used
    with pytest.raises(ResumeExpired):
        await resume(b, "nope", "tok-b4")  # unknown
    await b.deliver([Delivery("b", "signal", {"room": "r", "from": "a", "data": {}}, 2)])
    assert len(await node.sink.wait("b", 1)) == 1  # live again
    assert await b.expired(3e9) == []  # no longer lost


async def test_mailbox_bounds_drop_oldest(nodes: Nodes) -> None:
    b = (await nodes()).backend  # bounds here: 5 messages, 1000 bytes
    await b.register("b", "tok-b")
    await b.join("r", member("b"), 4)
    await b.lose("b", deadline=2e9, token="tok-b")
    for i in range(8):
        await b.deliver([Delivery("b", "relay", {"i": i}, 10)])
    await b.deliver([Delivery("b", "relay", {"i": "huge"}, 5000)])  # never fits
    resumed = await resume(b, "tok-b", "t2")
    assert [d.payload["i"] for d in resumed.kept] == [3, 4, 5, 6, 7]
    assert resumed.dropped == 4
    await b.lose("b", deadline=2e9, token="t2")
    for i in range(3):
        await b.deliver([Delivery("b", "relay", {"i": i}, 400)])
    resumed = await resume(b, "t2", "t3")
    assert [d.payload["i"] for d in resumed.kept] == [1, 2] and resumed.dropped == 1


async def test_expired_once_then_forget(nodes: Nodes) -> None:
    b = (await nodes()).backend
    for pid in "abc":
        await b.register(pid, f"tok-{pid}")
        await b.join("r", member(pid), 4)
    await b.lose("c", deadline=100.0, token="tok-c")
    assert await b.expired(99.0) == []
    assert await b.expired(100.0) == ["c"]
    assert await b.expired(101.0) == []
    departures = await b.forget("c")
    assert [(d.room, d.peer_id, sorted(d.remaining)) for d in departures] == [("r", "c", ["a", "b"])]
    assert not await b.is_member("r", "c")
    assert await b.forget("c") == []
    with pytest.raises(ResumeExpired):
        await resume(b, "tok-c", "x")
    assert (await b.counts())[1] == 2


async def test_expired_peer_cannot_be_resumed(nodes: Nodes) -> None:
    """Once ``expired`` has handed a peer out its departure is under way: a resume
    before its ``forget`` would be forgotten with it, and its connection would hold
    a peer with no record (docs/reliability.md, bug 6)."""
    b = (await nodes()).backend
    await b.register("c", "tok-c")
    await b.join("r", member("c"), 4)
    await b.lose("c", deadline=100.0, token="tok-c")
    assert await b.expired(100.0) == ["c"]
    with pytest.raises(ResumeExpired):
        await resume(b, "tok-c", "x")
    assert [d.room for d in await b.forget("c")] == ["r"]
    assert await b.counts() == (0, 0)


async def test_rotate_token(nodes: Nodes) -> None:
    b = (await nodes()).backend
    await b.register("a", "one")
    await b.join("r", member("a"), 4)
    await b.rotate_token("a", "two")
    await b.lose("a", deadline=2e9, token="two")
    with pytest.raises(ResumeExpired):
        await resume(b, "one", "three")
    assert (await resume(b, "two", "three")).peer_id == "a"


async def test_forget_leaves_every_room(nodes: Nodes) -> None:
    b = (await nodes()).backend
    for pid in "ab":
        await b.register(pid, f"tok-{pid}")
    for room in ("x", "y"):
        await b.join(room, member("a"), 4)
    await b.join("y", member("b"), 4)
    departures = await b.forget("a")
    assert sorted((d.room, tuple(d.remaining)) for d in departures) == [("x", ()), ("y", ("b",))]
    assert await b.counts() == (1, 1)


async def test_delivery_to_unknown_peer_is_dropped(nodes: Nodes) -> None:
    node = await nodes()
    await node.backend.deliver([Delivery("ghost", "signal", {"x": 1}, 1)])
    assert node.sink.got == []


async def test_healthy(nodes: Nodes) -> None:
    assert await (await nodes()).backend.unavailable_reason() is None


async def test_sink_may_lose_the_peer_it_is_handed(nodes: Nodes) -> None:
    """A connection that stopped reading ends inside the sink: the adapter then calls lose."""
    node = await nodes()
    b = node.backend
    for pid in "ab":
        await b.register(pid, f"tok-{pid}")
        await b.join("r", member(pid), 4)

    async def aborting(deliveries: Sequence[Delivery]) -> None:
        if any(d.peer_id == "b" for d in deliveries):
            await b.lose("b", deadline=2e9, token="tok-b")
            await b.deliver([Delivery("b", "signal", {"after": 1}, 1)])

    node.sink.then = aborting
    await b.deliver([Delivery("b", "signal", {"first": 1}, 1)])
    resumed = await resume(b, "tok-b", "t2")
    assert [d.payload for d in resumed.kept] == [{"after": 1}]


async def test_superseded_token_lose_and_forget_change_nothing(nodes: Nodes) -> None:
    """The end of a peer's old connection comes after the peer was resumed on a new
    one (a new token): neither its lose nor its forget may touch the resumed peer
    (docs/reliability.md, bug 7). With the current token both still work."""
    node = await nodes()
    b = node.backend
    await a_and_b_in_r_b_also_in_s(b)
    resumed = await resume(b, "tok-b", "tok-b2")  # its old connection has not ended yet
    assert resumed.peer_id == "b"
    await b.lose("b", deadline=100.0, token="tok-b")  # the old connection: lost
    assert await b.forget("b", token="tok-b") == []  # ... or gone on purpose
    await b.deliver([Delivery("b", "signal", {"room": "r", "from": "a", "data": {"live": 1}}, 1)])
    assert [d.payload["data"] for d in await node.sink.wait("b", 1)] == [{"live": 1}]
    assert await b.expired(3e9) == []  # never lost, so never expired
    assert await b.rooms_of("b") == ["r", "s"]
    assert sorted(m.peer_id for m in await b.members("r")) == ["a", "b"]
    assert await b.counts() == (2, 2)
    # the token the new connection holds: lose, resume, then leave on purpose
    await b.lose("b", deadline=100.0, token="tok-b2")
    await b.deliver([Delivery("b", "signal", {"room": "r", "from": "a", "data": {"kept": 1}}, 1)])
    assert len(node.sink.to("b")) == 1
    again = await resume(b, "tok-b2", "tok-b3")
    assert [d.payload["data"] for d in again.kept] == [{"kept": 1}]
    assert await b.forget("b", token="tok-b2") == []  # superseded again
    departures = await b.forget("b", token="tok-b3")
    assert sorted((d.room, d.remaining) for d in departures) == [("r", ["a"]), ("s", [])]
    assert await b.counts() == (1, 1)


async def test_superseded_token_lose_then_expiry_keeps_the_resumed_peer(nodes: Nodes) -> None:
    """A stale lose after a resume from a lost state: the grace of the old loss is
    over, yet the resumed peer is not handed out to the reaper."""
    b = (await nodes()).backend
    await b.register("b", "tok-b")
    await b.join("r", member("b"), 4)
    await b.lose("b", deadline=100.0, token="tok-b")
    await resume(b, "tok-b", "tok-b2")
    await b.lose("b", deadline=100.0, token="tok-b")  # the old connection again, late
    assert await b.expired(100.0) == []
    assert (await resume(b, "tok-b2", "tok-b3")).rooms == ["r"]  # its token still works


async def test_update_meta_only_while_in_the_room(nodes: Nodes) -> None:
    b = (await nodes()).backend
    await a_and_b_in_r_b_also_in_s(b)
    assert await b.update_meta("r", "b", {"v": 2}) == ["a"]
    got = {m.peer_id: m for m in await b.members("r")}
    assert got["b"].meta == {"v": 2} and got["b"].webrtc is True
    assert [m.meta for m in await b.members("s")] == [{}]  # per room
    assert await b.update_meta("nope", "b", {}) is None
    await b.leave("r", "b")
    assert await b.update_meta("r", "b", {"v": 3}) is None
    assert [m.peer_id for m in await b.members("r")] == ["a"]  # not brought back


async def test_release_puts_a_lost_peer_back_exactly(nodes: Nodes) -> None:
    """A resume that fails (on another node for Redis) leaves the lost peer's
    deadline, mail and dropped count as they were; mail that came meanwhile is kept."""
    one, two = await nodes(), await nodes()
    a, b = one.backend, two.backend
    await a_and_b_in_r_b_also_in_s(a)
    await a.lose("b", deadline=1000.0, token="tok-b")
    for i in range(7):  # bounds here: 5 messages; 0 and 1 dropped
        await a.deliver([Delivery("b", "relay", {"i": i}, 10)])
    resumed = await b.resume("tok-b", "tok-b2")
    await a.deliver([Delivery("b", "relay", {"i": 7}, 10)])  # during the claim: kept, 2 dropped
    await b.release(resumed, "tok-b", "tok-b2")
    assert one.sink.to("b") == [] and two.sink.to("b") == []
    with pytest.raises(ResumeExpired):
        await b.resume("tok-b2", "x")  # the failed resume's token is dead
    assert {m.peer_id: up for m, up in await a.peek("r")}["b"] is False
    assert await a.expired(999.0) == []
    again = await resume(a, "tok-b", "tok-b3")
    assert again.rooms == ["r", "s"]
    assert [d.payload["i"] for d in again.kept] == [3, 4, 5, 6, 7] and again.dropped == 3


async def test_release_keeps_the_deadline(nodes: Nodes) -> None:
    b = (await nodes()).backend
    await a_and_b_in_r_b_also_in_s(b)
    await b.lose("b", deadline=1000.0, token="tok-b")
    await b.release(await b.resume("tok-b", "tok-b2"), "tok-b", "tok-b2")
    assert await b.expired(999.0) == []
    assert await b.expired(1000.0) == ["b"]


async def test_release_gives_an_open_connection_back_its_peer(nodes: Nodes) -> None:
    node = await nodes()
    b = node.backend
    await a_and_b_in_r_b_also_in_s(b)
    resumed = await b.resume("tok-b", "tok-b2")  # its old connection is still open
    await b.deliver([Delivery("b", "relay", {"i": 1}, 10)])
    assert node.sink.to("b") == []  # not to the connection being replaced
    await b.release(resumed, "tok-b", "tok-b2")
    assert [d.payload for d in await node.sink.wait("b", 1)] == [{"i": 1}]
    await b.deliver([Delivery("b", "relay", {"i": 2}, 10)])
    assert [d.payload["i"] for d in await node.sink.wait("b", 2)] == [1, 2]
    assert {m.peer_id: up for m, up in await b.peek("r")}["b"] is True
    assert await b.expired(3e9) == []
    with pytest.raises(ResumeExpired):
        await b.resume("tok-b2", "x")
    assert (await resume(b, "tok-b", "tok-b3")).rooms == ["r", "s"]


async def test_old_connection_lost_during_a_failed_resume(nodes: Nodes) -> None:
    b = (await nodes()).backend
    await a_and_b_in_r_b_also_in_s(b)
    resumed = await b.resume("tok-b", "tok-b2")
    await b.lose("b", deadline=1000.0, token="tok-b")  # the old connection ends meanwhile
    await b.release(resumed, "tok-b", "tok-b2")
    assert await b.expired(999.0) == []
    assert await b.expired(1000.0) == ["b"]


async def test_old_connection_leaving_during_a_failed_resume(nodes: Nodes) -> None:
    """Its end does not forget the peer the resume holds; should the resume
    fail, the peer goes at the next reap, not never."""
    b = (await nodes()).backend
    await a_and_b_in_r_b_also_in_s(b)
    resumed = await b.resume("tok-b", "tok-b2")
    assert await b.forget("b", token="tok-b") == []
    assert await b.is_member("r", "b")
    await b.release(resumed, "tok-b", "tok-b2")
    assert await b.expired(3e9) == ["b"]
    assert sorted(d.room for d in await b.forget("b")) == ["r", "s"]
