"""Shared by the media tests: waiting for tracks and frames with bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from peer import Peer

WAIT = 20.0


class Tracks:
    """The ``track`` events a Peer raises, to wait on (none is lost to a wait for another)."""

    def __init__(self, peer: Peer) -> None:
        self.got: list[tuple[str, MediaStreamTrack]] = []
        self._changed = asyncio.Event()
        peer.on("track", self._add)

    def _add(self, sender: str, track: MediaStreamTrack) -> None:
        self.got.append((sender, track))
        self._changed.set()

    async def next(self, sender: str | None = None, kind: str = "video") -> MediaStreamTrack:
        """The first unseen track of ``kind`` (from ``sender``), within WAIT."""
        async with asyncio.timeout(WAIT):
            while True:
                for index, (got_sender, track) in enumerate(self.got):
                    if track.kind == kind and (sender is None or got_sender == sender):
                        del self.got[index]
                        return track
                self._changed.clear()
                await self._changed.wait()


async def frames(track: MediaStreamTrack, count: int) -> list[Any]:
    """``count`` frames from ``track``, within WAIT."""
    async with asyncio.timeout(WAIT):
        return [await track.recv() for _ in range(count)]


async def ended(track: MediaStreamTrack) -> bool:
    """True once ``track`` ends (recv raises), within WAIT."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return True


async def connected_mid_order(make: Callable[[], Peer], tries: int = 20) -> Peer:
    """``make()`` connected, again until its peerId starts in the middle of the id alphabet.

    Browser tests want peers on both sides of the offerer rule (lower id
    offers); an id starting with "-" or "z" would make that improbable.
    """
    for _ in range(tries):
        peer = make()
        await peer.connect()
        if "G" <= peer.id[0] <= "t":
            return peer
        await peer.close()
    raise AssertionError(f"no peerId in the middle in {tries} tries")
