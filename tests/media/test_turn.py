"""Through real coturn: a relay-only Chromium page and a Python peer, data and media.

And fresh credentials: with ``--turn-ttl 60`` the join's credentials are
stale from the start (they expire within the refresh margin), so every
connection must authenticate with credentials from the ``ice-servers``
request; coturn refuses expired ones.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiortc import VideoStreamTrack

from peer import Peer
from tests.helpers.coturn import Coturn, running_coturn
from tests.helpers.server import running_server
from tests.media.browser import PLAYS
from tests.media.support import WAIT, Tracks, frames
from tests.web.pages import blank_page


@pytest_asyncio.fixture(loop_scope="session")  # the loop of the browser tests (tests/conftest.py)
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    async with running_coturn(tmp_path) as running:
        yield running


async def webrtc(peer: Peer, other: str) -> None:
    async with asyncio.timeout(WAIT):
        while peer.transport(other) != "webrtc":
            await asyncio.sleep(0.05)


async def test_python_peers_forced_onto_turn_exchange_data_and_media(coturn: Coturn) -> None:
    async with running_server(*coturn.server_flags()) as server:
        a = Peer(server.url, "turn", ice_transport_policy="relay")
        b = Peer(server.url, "turn", ice_transport_policy="relay")
        a.add_track(VideoStreamTrack())
        tracks = Tracks(b)
        got: asyncio.Queue[str] = asyncio.Queue()
        b.on("hello", lambda _s, data: got.put_nowait(data))
        await a.connect()
        await b.connect()
        try:
            await webrtc(a, b.id)
            assert a.path(b.id)["candidate"] == "relay"
            await a.emit("hello", "through coturn", to=b.id)
            assert await asyncio.wait_for(got.get(), WAIT) == "through coturn"
            assert len(await frames(await tracks.next(a.id), 10)) == 10
        finally:
            await a.close()
            await b.close()


async def test_relay_only_chromium_reaches_a_python_peer_through_coturn(
    coturn: Coturn, browser: Any
) -> None:
    async with running_server(*coturn.server_flags()) as server:
        python = Peer(server.url, "turn-browser")
        python.add_track(VideoStreamTrack())
        got: asyncio.Queue[Any] = asyncio.Queue()
        python.on("hello", lambda _s, data: got.put_nowait(data))
        await python.connect()
        context, page, errors = await blank_page(browser, server.url)
        try:
            path = await page.evaluate(
                """async (pythonId) => {
                  const { Peer } = await import('/static/rtc-peer.js');
                  const peer = new Peer(location.origin, 'turn-browser',
                                        { iceTransportPolicy: 'relay', receiveMedia: true });
                  peer.tracks = [];
                  peer.on('track', (from, track) => peer.tracks.push({ from, track }));
                  window.peers = [peer];
                  await peer.connect();
                  const deadline = Date.now() + 30000;
                  while (peer.transport(pythonId) !== 'webrtc' && Date.now() < deadline)
                    await new Promise((r) => setTimeout(r, 50));
                  await peer.emit('hello', 'relayed by coturn', { to: pythonId });
                  return await peer.path(pythonId);
                }""",
                python.id,
            )
            assert path["transport"] == "webrtc" and path["candidate"] == "relay", path
            assert await asyncio.wait_for(got.get(), WAIT) == "relayed by coturn"
            played = await page.evaluate(PLAYS, [python.id, 10])
            assert played[0][0] >= 10, played
            await page.evaluate("async () => window.peers[0].close()")
        finally:
            await context.close()
            await python.close()
        assert errors == []


async def test_connections_use_fresh_credentials_from_the_ice_servers_request(coturn: Coturn) -> None:
    async with running_server(*coturn.server_flags("--turn-ttl", "60")) as server:
        a = Peer(server.url, "ttl", ice_transport_policy="relay")
        b = Peer(server.url, "ttl", ice_transport_policy="relay")
        await a.connect()
        await b.connect()
        try:
            await webrtc(a, b.id)
            assert a._ice.fetched >= 1 and b._ice.fetched >= 1
            before = a._ice.fetched + b._ice.fetched
            # A rebuild (the offerer adds a track) fetches again, and connects through coturn.
            offerer, answerer = (a, b) if a.id < b.id else (b, a)
            tracks = Tracks(answerer)
            offerer.add_track(VideoStreamTrack())
            assert len(await frames(await tracks.next(offerer.id), 5)) == 5
            assert a._ice.fetched + b._ice.fetched > before
            async with asyncio.timeout(WAIT):  # the new data channel may open after the media
                while offerer.path(answerer.id)["transport"] != "webrtc":
                    await asyncio.sleep(0.05)
            assert offerer.path(answerer.id)["candidate"] == "relay"
        finally:
            await a.close()
            await b.close()


async def test_expired_credentials_are_refused_by_coturn(coturn: Coturn) -> None:
    """The control: the same relay-only pair with credentials past their expiry never connects."""
    expired_at = "1000000000:someone"
    credential = base64.b64encode(
        hmac.new(coturn.secret.encode(), expired_at.encode(), hashlib.sha1).digest()
    ).decode()
    servers = [{"urls": [coturn.url], "username": expired_at, "credential": credential}]
    async with running_server() as server:
        a = Peer(server.url, "expired", ice_servers=servers, ice_transport_policy="relay")
        b = Peer(server.url, "expired", ice_servers=servers, ice_transport_policy="relay")
        got: asyncio.Queue[str] = asyncio.Queue()
        b.on("x", lambda _s, data: got.put_nowait(data))
        await a.connect()
        await b.connect()
        try:
            await a.emit("x", "via the server", to=b.id)
            assert await asyncio.wait_for(got.get(), WAIT) == "via the server"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(webrtc(a, b.id), 8)
        finally:
            await a.close()
            await b.close()
