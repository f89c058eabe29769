"""The adapter's routing table (peerId -> connection) holds live peers only.

Run in-process, on a loopback port, so the table itself can be inspected: a
stale entry is invisible from outside, but keeps a Connection (and its
session) alive for the life of the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from signaling.app import SIO_KEY, create_app
from signaling.settings import Settings
from signaling.socketio_adapter import SignalingSocketServer
from tests.helpers.clients import RecordingClient


@pytest.fixture
async def in_process() -> AsyncIterator[tuple[str, SignalingSocketServer]]:
    app = create_app(Settings(port=0, resume_grace=30.0, rate_limit=0))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app[SIO_KEY]
    finally:
        await runner.cleanup()


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_resumes_leave_no_stale_routes(in_process: tuple[str, SignalingSocketServer],
                                             transport: str) -> None:
    url, sio = in_process
    first = await RecordingClient().connect(url, transports=[transport])
    ack = await first.join("r")
    peer_id, token = ack["peerId"], ack["resumeToken"]
    clients = [first]
    for _ in range(3):
        # A new connection resumes the peer (its old one is closed by the server).
        clients.append(await RecordingClient().connect(url, transports=[transport]))
        resumed = await clients[-1].join("r", resume=token)
        assert resumed["ok"] and resumed["peerId"] == peer_id
        token = resumed["resumeToken"]
        assert set(sio.by_peer_id) == {peer_id}, sio.by_peer_id
    await clients[-1].disconnect()
    await until(lambda: not sio.by_peer_id and not sio.by_eio_sid)
    for client in clients[:-1]:
        await client.sio.disconnect()


async def test_no_socketio_room_per_client(in_process: tuple[str, SignalingSocketServer]) -> None:
    """python-socketio's manager holds only its table of connected clients: a room per
    client cost memory and made each disconnect scan every room."""
    url, sio = in_process
    clients = [await RecordingClient().connect(url) for _ in range(5)]
    await clients[0].join("r")
    assert list(sio.manager.rooms["/"]) == [None]
    assert len(sio.manager.rooms["/"][None]) == 5
    for client in clients:
        await client.disconnect()
    await until(lambda: not sio.by_eio_sid)
    assert not sio.manager.rooms.get("/", {}).get(None)
