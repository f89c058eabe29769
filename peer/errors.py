"""Errors raised by the peer toolkit.

The tree::

    PeerError
    ├── SignalingError        a request the server refused; .code is the
    │                         contract's error code ("room-full", ...)
    ├── FrameError            bytes that are not a well-formed frame
    ├── SessionError          the remote peer broke the session rules; the
    │                         session is unusable afterwards
    ├── SendBufferFull        backpressure: wait for acks, then retry
    ├── MessageTooLarge       a message over the session's size limit
    ├── PeerGone              the remote peer left (or this peer closed)
    │                         before the operation ended
    ├── RequestError          ``Peer.request`` failed; .code is "no-handler",
    │                         "handler-error" or "timeout"
    ├── ReservedEvent         an application used a library event name
    │   (also a ValueError)
    └── FileTransferError     a file transfer failed (bad chunk, cancel)
        └── HashMismatch      the received bytes do not match the SHA-256

``FrameError`` and ``SessionError`` come from network input and never from
``assert``: a peer catches them, logs, and drops the offending data or session.
"""

from __future__ import annotations


class PeerError(Exception):
    """Base class of every error the peer toolkit raises on purpose."""


class SignalingError(PeerError):
    """A request the signaling server refused, with the contract's ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class FrameError(PeerError):
    """Malformed, oversized or unknown frame (network input)."""


class SessionError(PeerError):
    """The remote peer violated the session rules (e.g. acked an unsent seq)."""


class SendBufferFull(PeerError):
    """The unacked send buffer has no room; nothing was queued.

    Retry once ``Session.receive`` has processed an ack that freed space.
    """


class MessageTooLarge(PeerError):
    """The message exceeds the session's ``max_message_bytes``."""


class PeerGone(PeerError):
    """The remote peer left (or this peer closed) before the operation ended."""


class RequestError(PeerError):
    """A request got no answer: ``.code`` is ``no-handler``, ``handler-error`` or ``timeout``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ReservedEvent(PeerError, ValueError):
    """An application tried to send or handle one of the library's own event names."""


class FileTransferError(PeerError):
    """A file transfer failed; the transfer is over."""


class HashMismatch(FileTransferError):
    """The SHA-256 of the received bytes differs from the sender's."""
