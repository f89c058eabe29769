"""Errors that carry their wire code.

Every request the server refuses raises one of these; only the Socket.IO
adapter turns them into an ack ``{ok: false, error: {code, message}}`` or a
``rejected`` event. The tree::

    SignalingError                 (code: str)
    ├── InvalidPayload             invalid-payload
    ├── PayloadTooLarge            payload-too-large
    ├── RoomFull                   room-full
    ├── NotInRoom                  not-in-room
    ├── UnknownPeer                unknown-peer
    ├── Unauthorized               unauthorized
    ├── RateLimited                rate-limited
    ├── ResumeExpired              resume-expired
    ├── TooManyRooms               too-many-rooms  (v1.1)
    └── Unavailable                unavailable     (v1.1)
"""

from __future__ import annotations

from typing import ClassVar


class SignalingError(Exception):
    """A refused request. ``code`` is the contract's error code."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidPayload(SignalingError):
    code = "invalid-payload"


class PayloadTooLarge(SignalingError):
    code = "payload-too-large"


class RoomFull(SignalingError):
    code = "room-full"


class NotInRoom(SignalingError):
    code = "not-in-room"


class UnknownPeer(SignalingError):
    code = "unknown-peer"


class Unauthorized(SignalingError):
    code = "unauthorized"


class RateLimited(SignalingError):
    code = "rate-limited"


class ResumeExpired(SignalingError):
    code = "resume-expired"


def kicked() -> ResumeExpired:
    """The refusal of a resume (or join) for a peer an operator kicked meanwhile."""
    return ResumeExpired(
        "this peer was kicked by the server's operator and may not resume: join again without the token"
    )


class TooManyRooms(SignalingError):
    """A join past ``--max-rooms-per-connection`` (a re-join is not counted)."""

    code = "too-many-rooms"


class Unavailable(SignalingError):
    """The server could not do it now (shared state unreachable, internal error).

    Rather than fail silently or drop a client that did nothing wrong, the
    request is refused and changes nothing; the client may retry.
    """

    code = "unavailable"


ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        InvalidPayload,
        PayloadTooLarge,
        RoomFull,
        NotInRoom,
        UnknownPeer,
        Unauthorized,
        RateLimited,
        ResumeExpired,
        TooManyRooms,
        Unavailable,
    )
)


_PUBLIC_CAUSES = (
    "connection refused", "connection reset", "timed out", "timeout", "no route to host",
    "network is unreachable", "name or service not known", "temporary failure in name resolution",
    "authentication", "noauth", "wrongpass", "loading", "readonly", "oom",
)


def public_cause(exc: BaseException) -> str:
    """What went wrong, fit for anyone to read (``/healthz``): a known phrase
    from the error, or its type, never its text (which names hosts and ports)."""
    text = str(exc).lower()
    for phrase in _PUBLIC_CAUSES:
        if phrase in text:
            return phrase
    return type(exc).__name__
