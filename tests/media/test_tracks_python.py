"""Tracks between Python peers through the real server and real aiortc on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiortc import AudioStreamTrack, VideoStreamTrack

from peer import Peer
from tests.helpers.server import RunningServer
from tests.media.support import WAIT, Tracks, ended, frames


async def upgraded(a: Peer, b: Peer) -> None:
    async with asyncio.timeout(WAIT):
        while a.transport(b.id) != "webrtc" or b.transport(a.id) != "webrtc":
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="session")  # the loop of the browser tests (tests/conftest.py)
async def roles(server: RunningServer) -> AsyncIterator[tuple[Peer, Peer]]:
    """(offerer, answerer) of a pair that has a data channel."""
    a = Peer(server.url, "media")
    b = Peer(server.url, "media")
    await a.connect()
    await b.connect()
    try:
        await upgraded(a, b)
        yield (a, b) if a.id < b.id else (b, a)
    finally:
        await a.close()
        await b.close()


async def test_track_added_before_connect_reaches_now_and_later_joiners(server: RunningServer) -> None:
    sender = Peer(server.url, "before")
    sender.add_track(VideoStreamTrack())
    sender.add_track(AudioStreamTrack())
    first = Peer(server.url, "before")
    later = Peer(server.url, "before")
    first_tracks, later_tracks = Tracks(first), Tracks(later)
    await sender.connect()
    await first.connect()
    try:
        video = await first_tracks.next(sender.id)
        audio = await first_tracks.next(sender.id, kind="audio")
        assert len(await frames(video, 5)) == 5
        assert len(await frames(audio, 5)) == 5
        await later.connect()
        late_video = await later_tracks.next(sender.id)
        got = await frames(late_video, 5)
        assert got[0].width == 640 and got[0].height == 480
    finally:
        for peer in (later, first, sender):
            await peer.close()


@pytest.mark.parametrize("adder", ["offerer", "answerer"])
async def test_track_added_during_a_call_keeps_data_exactly_once(
    roles: tuple[Peer, Peer], adder: str
) -> None:
    offerer, answerer = roles
    source, sink = (offerer, answerer) if adder == "offerer" else (answerer, offerer)
    received: list[int] = []
    done = asyncio.Event()

    @sink.on("n")
    def on_n(_sender: str, n: int) -> None:
        received.append(n)
        if n == 199:
            done.set()

    sink_tracks = Tracks(sink)

    async def stream() -> None:
        for n in range(200):
            await source.emit("n", n, to=sink.id)
            await asyncio.sleep(0.005)

    sending = asyncio.create_task(stream())
    source.add_track(VideoStreamTrack())
    track = await sink_tracks.next(source.id)
    assert len(await frames(track, 10)) == 10
    await asyncio.wait_for(sending, WAIT)
    await asyncio.wait_for(done.wait(), WAIT)
    assert received == list(range(200))


@pytest.mark.parametrize("remover", ["offerer", "answerer"])
async def test_removing_a_track_ends_it_remotely(roles: tuple[Peer, Peer], remover: str) -> None:
    offerer, answerer = roles
    source, sink = (offerer, answerer) if remover == "offerer" else (answerer, offerer)
    sink_tracks = Tracks(sink)
    video = VideoStreamTrack()
    source.add_track(video)
    track = await sink_tracks.next(source.id)
    await frames(track, 3)
    source.remove_track(video)
    assert await ended(track)
    await upgraded(source, sink)  # the connection came back, without media
    assert video.readyState == "live"  # the application's own track runs on


async def test_a_peer_leaving_ends_its_tracks(roles: tuple[Peer, Peer]) -> None:
    offerer, answerer = roles
    sink_tracks = Tracks(answerer)
    offerer.add_track(VideoStreamTrack())
    track = await sink_tracks.next(offerer.id)
    await frames(track, 3)
    await offerer.close()
    assert await ended(track)


async def test_a_relay_only_peer_gets_no_tracks(server: RunningServer) -> None:
    sender = Peer(server.url, "relay-only")
    sender.add_track(VideoStreamTrack())
    relay_only = Peer(server.url, "relay-only", webrtc=False)
    tracks = Tracks(relay_only)
    got: asyncio.Queue[str] = asyncio.Queue()
    relay_only.on("ping", lambda _s, data: got.put_nowait(data))
    await sender.connect()
    await relay_only.connect()
    try:
        await sender.emit("ping", "after the track", to=relay_only.id)
        assert await asyncio.wait_for(got.get(), WAIT) == "after the track"
        assert not tracks.got
        assert relay_only.transport(sender.id) == "relay"
    finally:
        await relay_only.close()
        await sender.close()
