"""Python peers for the signaling server: one ``emit``/``on`` API over WebRTC
data channels (aiortc), with the server's ``relay`` as the fallback path.

::

    from peer import Peer

    async with Peer("http://127.0.0.1:8080", "lobby", meta={"name": "ada"}) as peer:
        peer.on("chat", lambda sender, data: print(sender, data))
        await peer.emit("chat", {"text": "hello"})          # everyone else
        await peer.emit("chat", b"\\x00bytes", to=other_id)  # one peer
        await peer.send_file(other_id, "big.iso")           # they get event "file"

``Peer(server_url, room, *, meta=None, webrtc=True, ice_servers=None,
token=None, reconnect=True, download_dir=".", max_file_bytes=None,
accept_file=None, secret=None, ice_transport_policy="all")``; ``await peer.connect()`` or
``async with``; ``peer.id``; ``peer.peers`` ({peerId: :class:`PeerInfo` with
``.meta``, ``.webrtc``}); ``peer.transport(peer_id)`` ("webrtc" or "relay");
``peer.on(event, handler)`` or ``@peer.on(event)``, ``handler(sender_id,
data)`` plain or async; ``await peer.emit(event, data, to=None,
reliable=True)`` (``reliable=False``: a lossy datagram on the data channel);
``await peer.send_file(peer_id, path)``; ``await peer.request(peer_id,
event, data, timeout=10)`` and ``peer.handle(event, handler)`` (the answer
is the handler's return value; :class:`RequestError` ``.code`` "no-handler",
"handler-error", "timeout"); ``await peer.update_meta(meta)`` (the others
raise ``peer-updated``); ``peer.path(peer_id)`` ({"transport", "candidate",
"rtt_ms"}); ``peer.add_track(track)`` / ``peer.remove_track(track)``
(aiortc media to every peer with WebRTC; they raise ``track``);
``peer.undecryptable`` (rooms with a ``secret``: messages that
did not open); ``await peer.close()``. A request the
server refuses raises :class:`SignalingError` with ``.code`` (the contract's
code: "unauthorized", "room-full", "unknown-peer", ...); an unreachable
server raises ``ConnectionError``.

Events: ``peer-joined`` (peerId, PeerInfo; also for the peers already in the
room at connect), ``peer-left`` (peerId, reason), ``peer-updated`` (peerId,
PeerInfo), ``upgrade`` / ``downgrade``
(peerId, None), ``file`` (senderId, :class:`ReceivedFile` with ``.name``,
``.size``, ``.sha256``, ``.path``), and as in the browser client
``file-offer``, ``file-progress``, ``file-failed`` and ``signaling`` (state,
own id). Those names are reserved (:class:`ReservedEvent` from ``emit``,
``request``, ``handle``; never raised for what a remote sends); any other
name is an application event.

Between two peers, messages arrive in the order sent, none lost and none
twice, whichever path carried them; the frames are the ones in
``docs/peer-wire.md``, shared with the browser client. The command line is
``python -m peer send|receive`` (:mod:`peer.cli`); the reference is
``docs/python.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    FileTransferError,
    HashMismatch,
    PeerError,
    PeerGone,
    RequestError,
    ReservedEvent,
    SignalingError,
)

if TYPE_CHECKING:
    from .peer import Peer
    from .peer_link import PeerInfo
    from .transfers import FileFailed, FileOffered, FileProgress, ReceivedFile

INSTALL_HINT = "pip install 'rtc-signaling[peer]'"
"""The command that installs the optional dependencies of the peer toolkit."""

_OPTIONAL = ("aiortc", "aioice", "av", "socketio", "engineio", "aiohttp")
_LAZY = {
    "Peer": ".peer",
    "PeerInfo": ".peer_link",
    "FileFailed": ".transfers",
    "FileOffered": ".transfers",
    "FileProgress": ".transfers",
    "ReceivedFile": ".transfers",
}


def __getattr__(name: str) -> Any:
    """Import aiortc and the Socket.IO client only when a Peer is asked for.

    So ``python -m peer`` and the examples can say which command installs a
    missing dependency instead of ending in an ImportError traceback.
    """
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'peer' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name, __name__)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in _OPTIONAL:
            raise ModuleNotFoundError(
                f"the peer toolkit needs {exc.name}, which is not installed: {INSTALL_HINT}",
                name=exc.name,
            ) from exc
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value


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
    "RequestError",
    "ReservedEvent",
    "SignalingError",
]
