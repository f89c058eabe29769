"""The router (peerId -> connection) holds live peers only.

Run in-process, on a loopback port, so the table itself can be inspected: a
stale entry is invisible from outside, but keeps a Connection (and its
session) alive for the life of the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from signaling.app import GATEWAY_KEY, create_app
from signaling.gateway import Gateway
from signaling.settings import Settings
from tests.helpers.clients import RecordingClient


@pytest.fixture
async def in_process() -> AsyncIterator[tuple[str, Gateway]]:
    app = create_app(Settings(port=0, resume_grace=30.0, rate_limit=0))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app[GATEWAY_KEY]
    finally:
        await runner.cleanup()


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_resumes_leave_no_stale_routes(in_process: tuple[str, Gateway],
                                             transport: str) -> None:
    url, gw = in_process
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
        assert set(gw.router.by_peer) == {peer_id}, gw.router.by_peer
        assert not gw.router.joining
    await clients[-1].disconnect()
    await until(lambda: not gw.router.by_peer and not gw.engine.sessions)
    for client in clients[:-1]:
        await client.sio.disconnect()


async def test_sessions_end_with_their_clients(in_process: tuple[str, Gateway]) -> None:
    """Every Engine.IO session is forgotten when its client goes, whatever the transport."""
    url, gw = in_process
    clients = [await RecordingClient().connect(url, transports=[t])
               for t in ("websocket", "polling", "websocket", "polling", "websocket")]
    await clients[0].join("r")
    assert len(gw.engine.sessions) == 5 and len(gw.router.by_peer) == 1
    for client in clients:
        await client.disconnect()
    await until(lambda: not gw.engine.sessions and not gw.router.by_peer)
    assert len(gw.engine.wheel) == 0
