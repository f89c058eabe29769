"""The media tracks a Peer sends, shared by every connection it makes.

One application track feeds many RTCPeerConnections (one per remote peer,
and a new one after every rebuild). An aiortc sender pulls frames with
``recv()``, so two senders on one track would split its frames between
them: every connection gets its own unbuffered subscription of aiortc's
``MediaRelay`` instead (the latest frame only, so a slow connection never
makes a queue grow), and stops it when the connection closes.

Video reaches the relay already in yuv420p, the format aiortc's encoders take:
the relay hands the same frame object to every connection, and an encoder
that converts a frame does so through a converter cached on that frame, so
two encoders in two threads converting one frame at once crashed the process
(SIGSEGV in PyAV, about one run in five with two browsers and an RGB camera).
"""

from __future__ import annotations

from typing import Any

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from av.frame import Frame
from av.packet import Packet
from av.video.frame import VideoFrame

KINDS = ("audio", "video")


class LocalMedia:
    """The application's tracks, in the order they were added."""

    def __init__(self) -> None:
        self.tracks: list[MediaStreamTrack] = []
        self._relay = MediaRelay()
        self._sources: dict[MediaStreamTrack, MediaStreamTrack] = {}

    def add(self, track: MediaStreamTrack) -> bool:
        """Add ``track``; False when it was there already."""
        if track.kind not in KINDS:
            raise ValueError(f"a track must be audio or video, not {track.kind!r}")
        if track in self.tracks:
            return False
        self.tracks.append(track)
        return True

    def remove(self, track: MediaStreamTrack) -> bool:
        """Remove ``track``; False when it was not there."""
        if track not in self.tracks:
            return False
        self.tracks.remove(track)
        self._sources.pop(track, None)
        return True

    def kinds(self) -> set[str]:
        return {track.kind for track in self.tracks}

    def subscribe(self, track: MediaStreamTrack) -> MediaStreamTrack:
        """A track of its own for one connection's sender; stop it with the connection."""
        source = track
        if track.kind == "video":
            source = self._sources.setdefault(track, _Yuv420(track))
        return self._relay.subscribe(source, buffered=False)


class _Yuv420(MediaStreamTrack):
    """The frames of a video track, converted to yuv420p once for all encoders."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self._source = source

    async def recv(self) -> Frame | Packet[Any]:
        frame = await self._source.recv()
        if isinstance(frame, VideoFrame) and frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")  # keeps pts and time_base
        return frame
