"""update_meta and peer-updated between real Peers on the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peer import Peer, PeerInfo, SignalingError
from tests.helpers.server import RunningServer

WAIT = 10.0


async def test_update_meta_reaches_the_others_and_later_joiners(server: RunningServer) -> None:
    a = Peer(server.url, "presence", meta={"name": "a"}, webrtc=False)
    b = Peer(server.url, "presence", meta={"name": "b"}, webrtc=False)
    updates: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    b.on("peer-updated", lambda peer_id, info: updates.put_nowait((peer_id, info)))
    await a.connect()
    await b.connect()
    try:
        await a.update_meta({"name": "a", "muted": True})
        peer_id, info = await asyncio.wait_for(updates.get(), WAIT)
        assert peer_id == a.id
        assert info == PeerInfo(a.id, {"name": "a", "muted": True}, False)
        assert b.peers[a.id].meta == {"name": "a", "muted": True}
        assert a.meta == {"name": "a", "muted": True}
        async with Peer(server.url, "presence", webrtc=False) as c:
            assert c.peers[a.id].meta == {"name": "a", "muted": True}
        with pytest.raises(SignalingError) as too_big:
            await a.update_meta({"pad": "x" * 2000})
        assert too_big.value.code == "payload-too-large"
        assert a.meta == {"name": "a", "muted": True}
        assert updates.empty()
    finally:
        await b.close()
        await a.close()

