"""request/handle between real Peers on the real server: answers, errors, timeouts, switches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from peer import Peer, PeerGone, RequestError, ReservedEvent
from peer.requests import Pending
from peer.session import Message
from tests.helpers.server import RunningServer

WAIT = 10.0


async def sequenced(peer: Peer, to: str, count: int) -> None:
    """Return once ``count`` requests to ``to`` are open (each is sequenced as it opens)."""
    async with asyncio.timeout(WAIT):
        while len(peer._links[to].requests) < count:
            await asyncio.sleep(0)


@pytest.fixture
async def relay_pair(server: RunningServer) -> AsyncIterator[tuple[Peer, Peer]]:
    a = Peer(server.url, "req", webrtc=False)
    b = Peer(server.url, "req", webrtc=False)
    await a.connect()
    await b.connect()
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def test_plain_and_async_handlers_answer_json_and_bytes(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair
    seen: list[tuple[str, Any]] = []

    def add(sender: str, data: Any) -> int:
        seen.append((sender, data))
        return int(sum(data))

    async def echo(_sender: str, data: Any) -> Any:
        await asyncio.sleep(0)
        return data

    b.handle("add", add)
    b.handle("echo", echo)
    assert await a.request(b.id, "add", [1, 2, 3]) == 6
    assert await a.request(b.id, "echo", b"\x00\xff" * 20000) == b"\x00\xff" * 20000
    assert await a.request(b.id, "echo", {"nested": [None, "é"]}) == {"nested": [None, "é"]}
    assert seen == [(a.id, [1, 2, 3])]


async def test_error_codes(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair

    def broken(_sender: str, _data: Any) -> Any:
        raise KeyError("missing")

    async def not_json(_sender: str, _data: Any) -> Any:
        return object()

    b.handle("broken", broken)
    b.handle("not-json", not_json)
    with pytest.raises(RequestError) as no_handler:
        await a.request(b.id, "nobody-handles-this", 1)
    assert no_handler.value.code == "no-handler"
    with pytest.raises(RequestError) as failed:
        await a.request(b.id, "broken", 1)
    assert failed.value.code == "handler-error" and "missing" in failed.value.message
    with pytest.raises(RequestError) as unsendable:
        await a.request(b.id, "not-json", 1)
    assert unsendable.value.code == "handler-error"
    b.handle("broken", None)
    with pytest.raises(RequestError) as removed:
        await a.request(b.id, "broken", 1)
    assert removed.value.code == "no-handler"


async def test_timeout_cancels_cleanly_and_a_late_answer_is_dropped(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(_sender: str, data: Any) -> Any:
        started.set()
        await release.wait()
        return data

    b.handle("slow", slow)
    b.handle("fast", lambda _s, data: data)
    with pytest.raises(RequestError) as timed_out:
        await a.request(b.id, "slow", "late", timeout=0.3)
    assert timed_out.value.code == "timeout"
    assert started.is_set()
    assert len(a._links[b.id].requests) == 0
    release.set()
    # The late answer arrives and is dropped; the next request gets its own answer.
    assert await a.request(b.id, "fast", "next") == "next"
    assert len(a._links[b.id].requests) == 0


async def test_a_slow_handler_blocks_neither_events_nor_other_requests(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair
    release = asyncio.Event()
    order: list[str] = []
    chat = asyncio.Event()

    async def slow(_sender: str, _data: Any) -> str:
        order.append("slow started")
        await release.wait()
        return "slow done"

    def on_chat(_sender: str, data: Any) -> None:
        order.append(f"chat {data}")
        chat.set()

    b.handle("slow", slow)
    b.handle("fast", lambda _s, data: order.append(f"fast {data}") or data)
    b.on("chat", on_chat)
    await a.emit("chat", 1, to=b.id)
    slow_answer = asyncio.ensure_future(a.request(b.id, "slow", None))
    await sequenced(a, b.id, 1)
    await a.emit("chat", 2, to=b.id)
    assert await asyncio.wait_for(a.request(b.id, "fast", 3), WAIT) == 3
    await asyncio.wait_for(chat.wait(), WAIT)
    assert not slow_answer.done()
    # Ordered with emits: each started in the order sent, none waited for the slow one.
    assert order == ["chat 1", "slow started", "chat 2", "fast 3"]
    release.set()
    assert await asyncio.wait_for(slow_answer, WAIT) == "slow done"


async def test_requests_in_flight_fail_when_the_peer_leaves(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair
    started = asyncio.Event()

    async def forever(_sender: str, _data: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    b.handle("forever", forever)
    pending = asyncio.ensure_future(a.request(b.id, "forever", None, timeout=WAIT))
    await asyncio.wait_for(started.wait(), WAIT)
    await b.close()
    with pytest.raises(PeerGone):
        await asyncio.wait_for(pending, WAIT)


async def test_library_names_are_refused_for_requests(relay_pair: tuple[Peer, Peer]) -> None:
    a, b = relay_pair
    with pytest.raises(ReservedEvent):
        await a.request(b.id, "file", {})
    with pytest.raises(ReservedEvent):
        a.handle("peer-left", lambda *_: None)


async def test_answered_once_across_upgrade_and_downgrade(server: RunningServer) -> None:
    """A request sent while on the relay, answered after the data channel opened,
    and one answered after it was lost: each resolves once, with its own answer."""
    a = Peer(server.url, "req-switch")
    b = Peer(server.url, "req-switch")
    upgraded, downgraded = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def after(sender: str, data: Any) -> str:
        calls.append(data)
        await asyncio.wait_for((upgraded if data == "up" else downgraded).wait(), WAIT)
        return f"{data} answered on {b.transport(sender)}"

    b.on("upgrade", lambda *_: upgraded.set())
    b.on("downgrade", lambda *_: downgraded.set())
    b.handle("after", after)
    await a.connect()
    await b.connect()
    try:
        assert a.transport(b.id) == "relay"
        first = asyncio.ensure_future(a.request(b.id, "after", "up", timeout=2 * WAIT))
        assert await first == "up answered on webrtc"
        second = asyncio.ensure_future(a.request(b.id, "after", "down", timeout=2 * WAIT))
        async with asyncio.timeout(WAIT):
            while calls != ["up", "down"]:
                await asyncio.sleep(0.01)
        channel = b._links[a.id].webrtc
        assert channel is not None
        channel.channel.close()
        assert await second == "down answered on relay"
        assert calls == ["up", "down"]
        assert len(a._links[b.id].requests) == 0
    finally:
        await b.close()
        await a.close()


def test_pending_bookkeeping() -> None:
    async def run() -> None:
        pending = Pending()
        first, answer = pending.open()
        second, failed = pending.open()
        assert (first, second) == (1, 2)
        assert pending.answer(Message("e", 5, response=1))
        assert await answer == 5
        assert not pending.answer(Message("e", 5, response=1))  # twice: dropped
        assert pending.answer(Message("e", "boom", response=2, error="handler-error"))
        with pytest.raises(RequestError) as err:
            await failed
        assert err.value.code == "handler-error" and err.value.message == "boom"
        assert len(pending) == 0

    asyncio.run(run())


async def test_one_peer_cannot_start_unbounded_handlers(server: RunningServer) -> None:
    """300 requests at once to a handler that never returns: 256 run, the rest are
    answered "handler-error" at once; once they finish, requests run again."""
    from peer.constants import MAX_ANSWERING_PER_PEER
    from tests.peer.test_peer_wire import _setup

    release = asyncio.Event()
    started: list[int] = []

    async def stuck(_sender: str, n: int) -> int:
        started.append(n)
        await release.wait()
        return n

    async with Peer(server.url, "req-flood", webrtc=False) as peer:
        peer.handle("stuck", stuck)
        remote = await _setup(server, "req-flood", peer)
        try:
            total = MAX_ANSWERING_PER_PEER + 44
            now = asyncio.get_running_loop().time()
            frames = [f for n in range(1, total + 1)
                      for f in remote.session.send_message("stuck", n, now, request=n)]
            await remote._write([b"".join(frames)])  # one relay: under the server's rate limit
            refused = [await remote.next(Message) for _ in range(total - MAX_ANSWERING_PER_PEER)]
            assert all(m.error == "handler-error" for m in refused)
            assert len(started) == MAX_ANSWERING_PER_PEER
            assert len(peer._answering) == MAX_ANSWERING_PER_PEER
            release.set()
            answered = [await remote.next(Message) for _ in range(MAX_ANSWERING_PER_PEER)]
            assert sorted(m.data for m in answered) == list(range(1, MAX_ANSWERING_PER_PEER + 1))
            await remote.send_message("stuck", "again", request=total + 1)
            again = await remote.next(Message)
            assert (again.response, again.data, again.error) == (total + 1, "again", None)
        finally:
            await remote.client.disconnect()
