"""Python peers for the signaling server: one ``emit``/``on`` API over
WebRTC data channels (aiortc) with the server's ``relay`` as the fallback.

    async with Peer("http://127.0.0.1:8080", "room") as peer:
        peer.on("chat", lambda sender, text: print(sender, text))
        await peer.emit("chat", "hello")

See the contract (Peer clients) and ``docs/peer-wire.md`` for the frames.
"""

from __future__ import annotations

from .errors import FileTransferError, HashMismatch, PeerError, SignalingError
from .peer import FileFailed, FileOffered, FileProgress, Peer, PeerGone, PeerInfo, ReceivedFile

__all__ = [
    "FileFailed",
    "FileOffered",
    "FileProgress",
    "FileTransferError",
    "HashMismatch",
    "Peer",
    "PeerError",
    "PeerGone",
    "PeerInfo",
    "ReceivedFile",
    "SignalingError",
]
