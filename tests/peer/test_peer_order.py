"""1,000 numbered messages across upgrade, forced downgrade and re-upgrade: in order, once."""

from __future__ import annotations

import asyncio
from typing import Any

from peer import Peer
from tests.helpers.server import RunningServer

WAIT = 10.0
TOTAL = 1000


class Inbox:
    def __init__(self, peer: Peer) -> None:
        self.numbers: list[int] = []
        self.enough = asyncio.Event()
        self.target = TOTAL
        peer.on("n", self._on_number)

    def _on_number(self, _sender: str, data: Any) -> None:
        self.numbers.append(data["n"])
        if len(self.numbers) >= self.target:
            self.enough.set()


async def _send(peer: Peer, to: str, numbers: range) -> None:
    for n in numbers:
        await peer.emit("n", {"n": n, "pad": "x" * (n % 50)}, to=to)


async def test_numbered_messages_survive_every_switch(server: RunningServer) -> None:
    a = Peer(server.url, "order")
    b = Peer(server.url, "order")
    upgrades: asyncio.Queue[str] = asyncio.Queue()
    downgrades: asyncio.Queue[str] = asyncio.Queue()
    a.on("upgrade", lambda peer_id, _: upgrades.put_nowait(peer_id))
    a.on("downgrade", lambda peer_id, _: downgrades.put_nowait(peer_id))
    at_b, at_a = Inbox(b), Inbox(a)
    await a.connect()
    await b.connect()
    try:
        # Before the upgrade: on the relay (negotiation is still under way).
        assert a.transport(b.id) == "relay"
        await _send(a, b.id, range(250))
        await _send(b, a.id, range(250))
        await asyncio.wait_for(upgrades.get(), WAIT)
        assert a.transport(b.id) == "webrtc"
        await _send(a, b.id, range(250, 500))
        await _send(b, a.id, range(250, 500))

        # Forced downgrade mid-stream: close the data channel under the traffic.
        remote = a._links[b.id]
        assert remote.webrtc is not None
        remote.webrtc.channel.close()
        await _send(a, b.id, range(500, 650))
        await _send(b, a.id, range(500, 650))
        await asyncio.wait_for(downgrades.get(), WAIT)
        await _send(a, b.id, range(650, 750))

        # Re-upgrade on a new connection.
        await asyncio.wait_for(upgrades.get(), WAIT)
        assert a.transport(b.id) == "webrtc"
        await _send(a, b.id, range(750, TOTAL))
        await _send(b, a.id, range(650, TOTAL))

        await asyncio.wait_for(at_b.enough.wait(), WAIT)
        await asyncio.wait_for(at_a.enough.wait(), WAIT)
        assert at_b.numbers == list(range(TOTAL))
        assert at_a.numbers == list(range(TOTAL))
    finally:
        await b.close()
        await a.close()
    # Nothing arrived twice after the check either.
    assert len(at_b.numbers) == len(at_a.numbers) == TOTAL
