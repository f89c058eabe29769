"""A slow handler holds a fast sender back: the receiver's queue stays bounded.

Before: every message that arrived was acked and queued for the handlers at
once, so a sender blocked by nothing grew the receiver's memory without bound.
Now, past ``max_unhandled_messages``/``_bytes`` the receiver's session holds
that sender's frames unacked; the sender's send buffer fills and its ``emit``
waits. Nothing is lost, doubled or reordered, also across a path switch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from peer import Peer
from tests.helpers.server import RunningServer

WAIT = 30.0
TOTAL = 1000
SIZE = 16 * 1024  # 16 MB in all: twice the sender's send buffer (8 MiB)
BOUND_MESSAGES = 100
BOUND_BYTES = 1024 * 1024


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait for a condition of the peers' state (no event says it), bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g} s: {what}")
        await asyncio.sleep(0.02)


class SlowInbox:
    """Handler of ``n`` that blocks on ``gate``; records what arrives and the queue it left."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.gate = asyncio.Event()
        self.numbers: list[int] = []
        self.others: list[int] = []
        self.done = asyncio.Event()
        self.worst = (0, 0)
        peer.on("n", self._on)
        peer.on("other", lambda _sender, data: self.others.append(data))

    async def _on(self, _sender: str, data: Any) -> None:
        await self.gate.wait()
        self.numbers.append(int.from_bytes(data[:4], "big"))
        if len(self.numbers) >= TOTAL:
            self.done.set()

    def sample(self, sender: str) -> None:
        count, size = self.peer.unhandled(sender)
        queued = self.peer._events.qsize() if self.peer._events is not None else 0
        self.worst = (max(self.worst[0], count, queued), max(self.worst[1], size))


@pytest.mark.parametrize("path", ["relay", "webrtc", "downgrade"])
async def test_a_slow_handler_holds_the_sender_back(
    server: RunningServer, path: str
) -> None:
    webrtc = path != "relay"
    room = f"backpressure-{path}"
    a = Peer(server.url, room, webrtc=webrtc)
    b = Peer(server.url, room, webrtc=webrtc,
             max_unhandled_messages=BOUND_MESSAGES, max_unhandled_bytes=BOUND_BYTES)
    inbox = SlowInbox(b)
    upgraded = asyncio.Event()
    a.on("upgrade", lambda _peer, _data: upgraded.set())
    sent = 0
    try:
        await a.connect()
        await b.connect()
        if webrtc:
            await asyncio.wait_for(upgraded.wait(), WAIT)

        async def send_all() -> None:
            nonlocal sent
            for n in range(TOTAL):
                await a.emit("n", n.to_bytes(4, "big") + bytes(SIZE - 4), to=b.id)
                sent += 1
                inbox.sample(a.id)

        sending = asyncio.create_task(send_all())
        # The sender stalls: its send buffer is full of frames b holds unacked.
        link = a._links[b.id]

        def stalled() -> bool:
            inbox.sample(a.id)
            return link.session.buffered_bytes > 7 * 1024 * 1024 and b._links[a.id].session.holding
        await until(stalled, "the sender's buffer full and the receiver holding")
        assert not sending.done() and sent < TOTAL
        assert b.unhandled(a.id)[1] <= BOUND_BYTES

        # Another sender is not held back by a's backlog.
        c = Peer(server.url, room, webrtc=False)
        try:
            await c.connect()
            await until(lambda: c.id in b._links, "b sees c")
            for n in range(3):
                await asyncio.wait_for(c.emit("other", n, to=b.id), WAIT)
            await until(lambda: b.unhandled(c.id)[0] == 3, "c's messages queued at b")
        finally:
            await c.close()

        if path == "downgrade":  # the held frames come again on the relay: still once each
            held = b._links[a.id].session.delivered
            assert link.webrtc is not None
            link.webrtc.channel.close()
            await until(lambda: link.path == "relay" and b._links[a.id].path == "relay", "both on the relay")
            assert b._links[a.id].session.delivered == held

        inbox.gate.set()
        await asyncio.wait_for(sending, WAIT * 2)
        await asyncio.wait_for(inbox.done.wait(), WAIT)
        assert inbox.numbers == list(range(TOTAL))
        assert inbox.others == [0, 1, 2]
        assert inbox.worst[0] <= BOUND_MESSAGES + 3  # + c's three
        assert inbox.worst[1] <= BOUND_BYTES
        await until(lambda: b.unhandled(a.id) == (0, 0), "b's window empty again")
    finally:
        await b.close()
        await a.close()
    assert len(inbox.numbers) == TOTAL
