"""The session timer of a PeerLink on uvloop, whose ``call_at`` of a past time is a plain Handle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peer.peer_link import PeerInfo, PeerLink


class FakeRelay:
    name = "relay"
    max_message_bytes = 256 * 1024

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.more = asyncio.Event()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.more.set()


def test_a_past_deadline_is_scheduled_and_fires_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        relay = FakeRelay()
        link = PeerLink(PeerInfo("remote", {}, False), relay,  # type: ignore[arg-type]
                        on_deliveries=lambda *_: None, on_path=lambda *_: None)
        try:
            await link.send_message("e", b"x")
            await asyncio.wait_for(relay.more.wait(), 5)
            relay.more.clear()
            # The unacked frame's resend is due already (as when the loop ran late).
            session: Any = link.session
            session._retransmit_at = asyncio.get_running_loop().time() - 1
            link._schedule()
            link._schedule()  # the same deadline again: the timer is kept
            await asyncio.wait_for(relay.more.wait(), 5)
            assert relay.sent[-1] == relay.sent[0]  # the go-back-N resend
        finally:
            await link.close()

    uvloop.run(main())
