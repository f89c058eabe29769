"""Rooms with a secret, on the real server: what the server and outsiders see, and what gets in.

A plain python-socketio client stands for the server's view (and a hostile
member): it is a room member the Peers talk to, so it receives exactly what
the server relays, and it forges and replays what the server could.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from peer import Peer
from peer.sealing import SEALED_EVENT
from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer

WAIT = 15.0
SECRET = "correct horse battery staple"


async def _until(check: Any, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def _recording(signal: Any, into: list[dict[str, Any]]) -> Any:
    async def recorded(to: str, data: dict[str, Any]) -> None:
        into.append(data)
        await signal(to, data)

    return recorded


async def test_peers_with_the_secret_talk_and_the_server_sees_only_ciphertext(
    server: RunningServer,
) -> None:
    room = "blind"
    a = Peer(server.url, room, secret=SECRET)
    b = Peer(server.url, room, secret=SECRET)
    got: list[tuple[str, Any]] = []
    upgraded = asyncio.Event()
    b.on("chat", lambda sender, data: got.append((sender, data)))
    b.on("upgrade", lambda *_: upgraded.set())
    b.handle("ask", lambda _s, data: {"answer": data})
    await a.connect()
    await b.connect()
    signals: list[dict[str, Any]] = []  # what a and b hand the server as signal data
    for peer in (a, b):
        assert peer._signaling is not None
        peer._signaling.signal = _recording(peer._signaling.signal, signals)  # type: ignore[method-assign]
    spy = await RecordingClient().connect(server.url)
    try:
        await spy.join(room, webrtc=False)  # gets what a room-wide emit relays
        await a.emit("chat", {"text": "top secret"})
        await _until(lambda: got == [(a.id, {"text": "top secret"})])
        assert await a.request(b.id, "ask", 42) == {"answer": 42}
        # The DTLS handshake used SDP that only the peers could read: it works.
        await asyncio.wait_for(upgraded.wait(), WAIT)
        await a.emit("chat", {"text": "on the channel"}, to=b.id)
        await _until(lambda: len(got) == 2)
        relays = await spy.wait_for("relay")
        assert signals  # an offer and an answer at least
        assert all(r["event"] == SEALED_EVENT and isinstance(r["data"], bytes) for r in relays)
        assert all(b"top secret" not in r["data"] and b"chat" not in r["data"] for r in relays)
        assert all(list(data) == ["sealed"] for data in signals)
        assert not any("sdp" in json.dumps(data) or "candidate" in json.dumps(data) for data in signals)
        assert a.undecryptable == b.undecryptable == 0
    finally:
        await spy.disconnect()
        await b.close()
        await a.close()


async def test_outsiders_see_nothing_and_nothing_of_theirs_gets_in(server: RunningServer) -> None:
    room = "blind-out"
    a = Peer(server.url, room, secret=SECRET, webrtc=False)
    plain = Peer(server.url, room, webrtc=False)
    wrong = Peer(server.url, room, secret="another secret", webrtc=False)
    heard: list[tuple[str, str, Any]] = []
    for name, peer in [("a", a), ("plain", plain), ("wrong", wrong)]:
        peer.on("chat", lambda sender, data, name=name: heard.append((name, sender, data)))
    for peer in (a, plain, wrong):
        await peer.connect()
    spy = await RecordingClient().connect(server.url)
    try:
        await _until(lambda: len(a.peers) == 2 and len(plain.peers) == 2 and len(wrong.peers) == 2)
        await spy.join(room, webrtc=False)
        await _until(lambda: spy.sio.connected and len(a.peers) == 3)
        await a.emit("chat", "for members only")
        await plain.emit("chat", "from outside", to=a.id)
        await wrong.emit("chat", "wrong key", to=a.id)
        await _until(lambda: wrong.undecryptable >= 1 and a.undecryptable >= 2)
        # A sealed relay a sent to the spy, replayed by the spy to the others: it names
        # the spy as sender now, and opens for nobody.
        captured = next(r for r in await spy.wait_for("relay") if r["from"] == a.id)
        before = a.undecryptable
        await spy.request("relay", {"room": room, "event": SEALED_EVENT, "data": captured["data"],
                                    "to": a.id})
        await spy.request("relay", {"room": room, "event": SEALED_EVENT, "data": b"\x01" + bytes(40),
                                    "to": a.id})
        await _until(lambda: a.undecryptable == before + 2)
        # The plain peer drops a's sealed relays quietly (no application event, nothing counted).
        assert heard == []
    finally:
        await spy.disconnect()
        for peer in (wrong, plain, a):
            await peer.close()
