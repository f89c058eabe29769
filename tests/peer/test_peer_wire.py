"""A Peer against a hand-driven remote that speaks the frames itself (through the relay).

The remote is a bare python-socketio client with a :class:`peer.session.Session`:
it can say what a correct peer never would (a wrong SHA-256, a cancel), so
the failure paths run for real.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest

from peer import FileFailed, HashMismatch, Peer, ReceivedFile
from peer.framing import RELAY_EVENT, FileChunk, FileEnd, FileOffer, FileResult
from peer.session import Delivery, Session
from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer

WAIT = 10.0


class WireRemote:
    """A relay-only remote peer driven frame by frame."""

    def __init__(self, client: RecordingClient, room: str) -> None:
        self.client = client
        self.room = room
        self.session = Session()
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self.peer_id = ""
        self.to = ""
        client.sio.on("relay", self._on_relay)

    async def _on_relay(self, payload: dict[str, Any]) -> None:
        if payload["event"] != RELAY_EVENT:
            return
        now = asyncio.get_running_loop().time()
        for delivery in self.session.receive(payload["data"], now):
            self.deliveries.put_nowait(delivery)
        await self._write(self.session.poll(now + 1))  # ack at once

    async def _write(self, frames: list[bytes]) -> None:
        for frame in frames:
            reply = await self.client.request(
                "relay", {"room": self.room, "event": RELAY_EVENT, "data": frame, "to": self.to}
            )
            assert reply["ok"], reply

    async def send_message(self, event: str, data: Any, **marks: Any) -> None:
        now = asyncio.get_running_loop().time()
        await self._write(self.session.send_message(event, data, now, **marks))

    async def send(self, body: Any) -> None:
        await self._write([self.session.send(body, asyncio.get_running_loop().time())])

    async def next(self, kind: type) -> Any:
        while True:
            delivery = await asyncio.wait_for(self.deliveries.get(), WAIT)
            if isinstance(delivery, kind):
                return delivery


async def _setup(server: RunningServer, room: str, peer: Peer) -> WireRemote:
    client = await RecordingClient().connect(server.url)
    remote = WireRemote(client, room)
    ack = await client.join(room, webrtc=False, meta={"name": "wire"})
    remote.peer_id = ack["peerId"]
    remote.to = next(p["peerId"] for p in ack["peers"])
    assert remote.to == peer.id
    return remote


async def test_received_file_with_a_wrong_digest_is_refused(server: RunningServer, tmp_path: Path) -> None:
    peer = Peer(server.url, "wire-in", download_dir=tmp_path)
    failures: asyncio.Queue[FileFailed] = asyncio.Queue()
    files: list[ReceivedFile] = []
    peer.on("file-failed", lambda _s, failed: failures.put_nowait(failed))
    peer.on("file", lambda _s, received: files.append(received))
    async with peer:
        remote = await _setup(server, "wire-in", peer)
        try:
            await remote.send(FileOffer("f1", "evil.txt", 5, 16384))
            await remote.send(FileChunk("f1", 0, b"hello"))
            await remote.send(FileEnd("f1", "0" * 64))
            result = await remote.next(FileResult)
            assert result == FileResult("f1", False, hashlib.sha256(b"hello").hexdigest())
            failed = await asyncio.wait_for(failures.get(), WAIT)
            assert failed.name == "evil.txt" and failed.direction == "receive"
            assert isinstance(failed.error, HashMismatch)

            # The same bytes with the right digest are saved and announced.
            await remote.send(FileOffer("f2", "../good.txt", 5, 16384))
            await remote.send(FileChunk("f2", 0, b"hello"))
            await remote.send(FileEnd("f2", hashlib.sha256(b"hello").hexdigest()))
            assert (await remote.next(FileResult)).ok
        finally:
            await remote.client.disconnect()
    assert [f.path for f in files] == [tmp_path / "good.txt"]  # no way out of download_dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.txt"]


async def test_send_file_raises_when_the_receiver_disagrees(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"x" * 40000)
    async with Peer(server.url, "wire-out") as peer:
        remote = await _setup(server, "wire-out", peer)
        failures: list[FileFailed] = []
        peer.on("file-failed", lambda _s, failed: failures.append(failed))
        try:
            sending = asyncio.ensure_future(peer.send_file(remote.peer_id, source))
            offer = await remote.next(FileOffer)
            assert (offer.name, offer.size) == ("data.bin", 40000)
            end = await remote.next(FileEnd)
            assert end.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
            await remote.send(FileResult(offer.id, False, "1" * 64))
            with pytest.raises(HashMismatch):
                await asyncio.wait_for(sending, WAIT)
        finally:
            await remote.client.disconnect()
    assert [f.direction for f in failures] == ["send"]
