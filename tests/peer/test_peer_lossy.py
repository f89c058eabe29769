"""emit(..., reliable=False): datagrams on the lossy channel, dropped rather than relayed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from peer import Peer, ReservedEvent
from peer.errors import FrameError, MessageTooLarge
from peer.framing import Datagram, decode_datagram, encode_datagram
from tests.helpers.server import RunningServer

WAIT = 15.0


def test_datagram_frames() -> None:
    encoded = encode_datagram(Datagram("pos", b"[1,2]"))
    assert encoded.hex() == "04000f000000057b226576656e74223a22706f73227d5b312c325d"
    assert decode_datagram(encoded) == Datagram("pos", b"[1,2]")
    assert decode_datagram(encode_datagram(Datagram("b", b"\x00", True))) == Datagram("b", b"\x00", True)
    for bad in [encoded[:-1], encoded + b"x", b"\x01" + encoded[1:], b""]:
        with pytest.raises(FrameError):
            decode_datagram(bad)


async def test_datagrams_arrive_on_webrtc_and_are_dropped_on_the_relay(server: RunningServer) -> None:
    a = Peer(server.url, "lossy")
    b = Peer(server.url, "lossy")
    relay_only = Peer(server.url, "lossy", webrtc=False)
    got: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    relayed: list[Any] = []
    upgraded = asyncio.Event()
    b.on("pos", lambda sender, data: got.put_nowait((sender, data)))
    relay_only.on("pos", lambda _s, data: relayed.append(data))
    a.on("upgrade", lambda peer_id, _: upgraded.set() if peer_id == b.id else None)
    for peer in (a, b, relay_only):
        await peer.connect()
    try:
        await asyncio.wait_for(upgraded.wait(), WAIT)
        # Sent until one arrives: the channel may still be opening on b's side.
        async with asyncio.timeout(WAIT):
            while got.empty():
                await a.emit("pos", {"x": 1}, reliable=False)
                await a.emit("pos", b"\x01\x02", to=b.id, reliable=False)
                await asyncio.sleep(0.05)
        sender, data = await got.get()
        assert sender == a.id and data in ({"x": 1}, b"\x01\x02")
        # The relay-only peer gets nothing: datagrams are never relayed.
        marker = asyncio.Event()
        relay_only.on("marker", lambda *_: marker.set())
        await a.emit("marker", 1, to=relay_only.id)
        await asyncio.wait_for(marker.wait(), WAIT)
        assert relayed == []
        with pytest.raises(MessageTooLarge):
            await a.emit("pos", b"x" * 70000, reliable=False)
        with pytest.raises(ReservedEvent):
            await a.emit("file", {}, reliable=False)
    finally:
        for peer in (relay_only, b, a):
            await peer.close()


def test_datagrams_are_dropped_while_handlers_are_behind() -> None:
    from types import SimpleNamespace

    from peer.peer import MAX_QUEUED_FOR_DATAGRAMS

    async def run() -> int:
        peer = Peer("http://127.0.0.1:1", "lossy-queue")
        peer.on("pos", lambda *_: None)
        peer._events = asyncio.Queue()  # connected, with a dispatcher that is stuck
        link = SimpleNamespace(info=SimpleNamespace(peer_id="remote"))
        for n in range(MAX_QUEUED_FOR_DATAGRAMS + 500):
            peer._on_datagram(link, Datagram("pos", str(n).encode()))  # type: ignore[arg-type]
        return peer._events.qsize()

    assert asyncio.run(run()) == MAX_QUEUED_FOR_DATAGRAMS
