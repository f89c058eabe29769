"""The media tracks a Peer sends, shared by every connection it makes.

One application track feeds many RTCPeerConnections (one per remote peer,
and a new one after every rebuild). An aiortc sender pulls frames with
``recv()``, so two senders on one track would split its frames between
them: every connection gets its own unbuffered subscription of aiortc's
``MediaRelay`` instead (the latest frame only, so a slow connection never
makes a queue grow), and stops it when the connection closes.
"""

from __future__ import annotations

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

KINDS = ("audio", "video")


class LocalMedia:
    """The application's tracks, in the order they were added."""

    def __init__(self) -> None:
        self.tracks: list[MediaStreamTrack] = []
        self._relay = MediaRelay()

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
        return True

    def kinds(self) -> set[str]:
        return {track.kind for track in self.tracks}

    def subscribe(self, track: MediaStreamTrack) -> MediaStreamTrack:
        """A track of its own for one connection's sender; stop it with the connection."""
        return self._relay.subscribe(track, buffered=False)
