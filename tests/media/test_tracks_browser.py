"""Tracks between the Python Peer and Chromium's Peer, with Python as offerer and as answerer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import VideoStreamTrack

from peer import Peer
from tests.helpers.server import RunningServer
from tests.media.browser import BOTH_ROLES, PLAYS, WEBRTC_TO, close_peers
from tests.media.support import WAIT, Tracks, connected_mid_order, ended, frames
from tests.web.pages import blank_page


async def test_python_track_plays_in_chromium(server: RunningServer, browser: Any) -> None:
    def make() -> Peer:
        peer = Peer(server.url, "py-to-browser")
        peer.add_track(VideoStreamTrack())
        return peer

    python = await connected_mid_order(make)
    context, page, errors = await blank_page(browser, server.url)
    try:
        offerer, answerer = await page.evaluate(BOTH_ROLES, ["py-to-browser", python.id])
        assert offerer < python.id < answerer
        played = await page.evaluate(PLAYS, [python.id, 10])
        assert all(count >= 10 for count, _w, _h in played), played
        assert all((w, h) == (640, 480) for _c, w, h in played), played
        await close_peers(page)
    finally:
        await context.close()
        await python.close()
    assert errors == []


async def test_chromium_camera_added_during_a_call_reaches_python(
    server: RunningServer, browser: Any
) -> None:
    got: dict[str, list[int]] = {}
    tracks: Tracks | None = None

    def make() -> Peer:
        nonlocal tracks
        peer = Peer(server.url, "browser-to-py")
        tracks = Tracks(peer)
        got.clear()
        peer.on("n", lambda sender, n: got.setdefault(sender, []).append(n))
        return peer

    python = await connected_mid_order(make)
    assert tracks is not None
    context, page, errors = await blank_page(browser, server.url)
    try:
        ids = await page.evaluate(BOTH_ROLES, ["browser-to-py", python.id])
        assert await page.evaluate(WEBRTC_TO, python.id)
        await page.evaluate(
            """async (pythonId) => {
              const camera = await navigator.mediaDevices.getUserMedia({ video: true });
              const [track] = camera.getVideoTracks();
              await Promise.all(window.peers.map(async (peer) => {
                const sending = (async () => {
                  for (let n = 0; n < 100; n++) {
                    await peer.emit('n', n, { to: pythonId });
                    await new Promise((r) => setTimeout(r, 5));
                  }
                })();
                peer.addTrack(track);
                await sending;
              }));
            }""",
            python.id,
        )
        for browser_id in ids:
            track = await tracks.next(browser_id)
            assert len(await frames(track, 10)) == 10
        async with asyncio.timeout(WAIT):
            while any(len(got.get(i, [])) < 100 for i in ids):
                await asyncio.sleep(0.05)
        assert all(got[i] == list(range(100)) for i in ids)
        await close_peers(page)
    finally:
        await context.close()
        await python.close()
    assert errors == []


async def test_chromium_removing_its_track_ends_the_python_copy(
    server: RunningServer, browser: Any
) -> None:
    tracks: Tracks | None = None

    def make() -> Peer:
        nonlocal tracks
        peer = Peer(server.url, "browser-removes")
        tracks = Tracks(peer)
        return peer

    python = await connected_mid_order(make)
    assert tracks is not None
    context, page, errors = await blank_page(browser, server.url)
    try:
        ids = await page.evaluate(BOTH_ROLES, ["browser-removes", python.id])
        await page.evaluate(
            """async () => {
              const camera = await navigator.mediaDevices.getUserMedia({ video: true });
              window.camera = camera.getVideoTracks()[0];
              for (const peer of window.peers) peer.addTrack(window.camera);
            }"""
        )
        copies = [await tracks.next(browser_id) for browser_id in ids]
        for copy in copies:
            await frames(copy, 3)
        await page.evaluate("() => { for (const p of window.peers) p.removeTrack(window.camera); }")
        for copy in copies:
            assert await ended(copy)
        assert await page.evaluate("() => window.camera.readyState") == "live"
        await close_peers(page)
    finally:
        await context.close()
        await python.close()
    assert errors == []


async def test_chromium_offerer_adding_a_camera_moves_a_native_connection_to_aiortc(
    server: RunningServer, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data-only call on the native engine; the browser offerer re-offers with video.

    The native engine carries no media: the Python answerer asks for a new
    connection (aiortc, with the video) and no message is lost or doubled.
    """
    monkeypatch.setenv("RTC_PEER_ENGINE", "auto")
    got: list[int] = []
    tracks: Tracks | None = None

    def make() -> Peer:
        nonlocal tracks
        peer = Peer(server.url, "reoffer-media")
        tracks = Tracks(peer)
        got.clear()
        peer.on("n", lambda _sender, n: got.append(n))
        return peer

    python = await connected_mid_order(make)
    assert tracks is not None
    context, page, errors = await blank_page(browser, server.url)
    try:
        browser_id = await page.evaluate(
            """async ([room, pythonId]) => {
              const { Peer } = await import('/static/rtc-peer.js');
              for (let i = 0; i < 40; i++) {
                const peer = new Peer(location.origin, room);
                await peer.connect();
                if (peer.id < pythonId) { window.peers = [peer]; return peer.id; }
                await peer.close();
              }
              return null;
            }""",
            ["reoffer-media", python.id],
        )
        assert browser_id is not None and browser_id < python.id
        assert await page.evaluate(WEBRTC_TO, python.id)
        async with asyncio.timeout(WAIT):
            while python.transport(browser_id) != "webrtc":
                await asyncio.sleep(0.02)
        negotiator = python._links[browser_id].negotiator
        assert negotiator is not None
        assert type(negotiator.peer_connection).__name__ == "NativePeerConnection"
        await page.evaluate(
            """async (pythonId) => {
              const camera = await navigator.mediaDevices.getUserMedia({ video: true });
              const peer = window.peers[0];
              const sending = (async () => {
                for (let n = 0; n < 100; n++) {
                  await peer.emit('n', n, { to: pythonId });
                  await new Promise((r) => setTimeout(r, 5));
                }
              })();
              peer.addTrack(camera.getVideoTracks()[0]);
              await sending;
            }""",
            python.id,
        )
        track = await tracks.next(browser_id)
        assert len(await frames(track, 5)) == 5
        async with asyncio.timeout(WAIT):
            while len(got) < 100:
                await asyncio.sleep(0.05)
        assert got == list(range(100))
        assert type(negotiator.peer_connection).__name__ == "RTCPeerConnection"
        await close_peers(page)
    finally:
        await context.close()
        await python.close()
    assert errors == []
