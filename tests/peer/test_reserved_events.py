"""Library event names: an application cannot send them, and a remote cannot forge them.

The forger is a plain python-socketio client in the room: it sends plain
relays named like the library's events, and session frames (through the
relay, as a correct peer would) under those names. Nothing reaches the
Peer's handlers under a library name; what follows them still arrives.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from peer import Peer, ReservedEvent
from peer.constants import RESERVED_EVENTS
from tests.helpers.server import RunningServer
from tests.peer.test_peer_wire import _setup

WAIT = 10.0
FORGED = {"name": "../../evil", "path": "/etc/passwd", "size": 1, "sha256": "0" * 64}


async def test_emit_refuses_every_library_name(server: RunningServer) -> None:
    async with Peer(server.url, "reserved-out", webrtc=False) as peer:
        for name in sorted(RESERVED_EVENTS):
            with pytest.raises(ReservedEvent):
                await peer.emit(name, {})
            with pytest.raises(ValueError):  # ReservedEvent is also a ValueError
                await peer.emit(name, {}, to="anyone")
            with pytest.raises(ReservedEvent):
                peer.handle(name, lambda *_: None)


async def test_nothing_a_remote_sends_is_raised_under_a_library_name(server: RunningServer) -> None:
    peer = Peer(server.url, "reserved-in", webrtc=False)
    raised: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    done = asyncio.Event()
    for name in [*RESERVED_EVENTS, "hello", "framed-hello"]:
        peer.on(name, lambda sender, data, name=name: raised[name].append((sender, data)))
    peer.on("framed-hello", lambda *_: done.set())
    async with peer:
        joined = len(raised["peer-joined"])
        remote = await _setup(server, "reserved-in", peer)
        try:
            await asyncio.wait_for(_until(lambda: len(raised["peer-joined"]) > joined), WAIT)
            for name in sorted(RESERVED_EVENTS):
                reply = await remote.client.request(
                    "relay", {"room": "reserved-in", "event": name, "data": FORGED, "to": peer.id}
                )
                assert reply["ok"]
            await remote.client.request(
                "relay", {"room": "reserved-in", "event": "hello", "data": 1, "to": peer.id}
            )
            for name in sorted(RESERVED_EVENTS):
                await remote.send_message(name, FORGED)
            await remote.send_message("framed-hello", 2)
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            await remote.client.disconnect()
    forger = remote.peer_id
    assert raised["hello"] == [(forger, 1)] and raised["framed-hello"] == [(forger, 2)]
    for name in RESERVED_EVENTS:
        assert all(data is not FORGED and data != FORGED for _sender, data in raised[name]), name
    assert [sender for sender, _ in raised["peer-joined"]][-1] == forger  # the server's, genuine


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.01)
