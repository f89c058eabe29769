"""The ``Backend`` protocol: semantic operations on rooms and peers.

Each operation is one decision (``join`` checks capacity and adds the
member in one step), so a shared backend can make each one atomic. The
service owns the rules (who may do what); a backend owns the state and the
routing of deliveries to whichever connection holds a peer right now, or to
its resume mailbox while the peer's connection is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Member:
    """A peer as the others in one room see it."""

    peer_id: str
    meta: dict[str, Any]
    webrtc: bool

    def to_wire(self) -> dict[str, Any]:
        return {"peerId": self.peer_id, "meta": self.meta, "webrtc": self.webrtc}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One server-to-client event for one peer."""

    peer_id: str
    event: str
    payload: dict[str, Any]
    size: int = 0
    binary: bool | None = None  # whether payload holds bytes; None: not known


@dataclass(frozen=True, slots=True)
class JoinResult:
    others: list[Member]
    already_member: bool


@dataclass(frozen=True, slots=True)
class Resumed:
    """What ``resume`` hands back: the peer, its rooms and its kept mail."""

    peer_id: str
    rooms: list[str]
    kept: list[Delivery] = field(default_factory=list)
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Departure:
    """A peer removed from a room, and who is left to be told."""

    room: str
    peer_id: str
    remaining: list[str]


Sink = Callable[[Sequence[Delivery]], Awaitable[None]]
"""Hands deliveries to local connections, in order (set by the adapter)."""


class Backend(Protocol):
    async def start(self, sink: Sink) -> None:
        """Begin routing deliveries for this node's peers to ``sink``."""

    async def close(self) -> None: ...

    async def unavailable_reason(self) -> str | None:
        """None when the backend can serve; otherwise why not, as ``/healthz``
        shows it to anyone: no host, address or credential (the log has those)."""

    # -- peers -----------------------------------------------------------
    async def register(self, peer_id: str, resume_token: str) -> None:
        """A new peer is connected on this node."""

    async def rotate_token(self, peer_id: str, resume_token: str) -> None: ...

    async def lose(self, peer_id: str, deadline: float, token: str | None) -> None:
        """The peer's connection was lost: keep it, and its mail, until deadline.

        ``token`` is the resume token that connection knew: when the peer's
        current one differs, the peer was resumed since (on another connection,
        maybe another node) and this does nothing. None: whatever the token.
        """

    async def resume(self, resume_token: str, new_token: str) -> Resumed:
        """Claim the peer for a resuming connection on this node. Raises ``ResumeExpired``.

        From here on its current token is ``new_token`` (an old connection's
        end no longer speaks for it) and deliveries for it are kept, not handed
        to its old connection (which is being replaced), until :meth:`attach`
        or :meth:`release`. ``Resumed.kept`` may already hold mail taken out.
        """

    async def attach(self, peer_id: str) -> tuple[list[Delivery], int]:
        """The resume succeeded: the peer is live here; returns the mail kept
        since :meth:`resume` (after ``Resumed.kept``) and how many were dropped."""

    async def release(self, resumed: Resumed, old_token: str, new_token: str) -> None:
        """The resume failed: put the peer back exactly as it was, ``old_token``
        its token again, its grace deadline, mail and dropped count unchanged."""

    async def expired(self, now: float) -> list[str]:
        """Lost peers whose deadline has passed, each returned once (again only
        if its ``forget`` could not be done). None of them can be resumed any more."""

    async def forget(self, peer_id: str, token: str | None = None) -> list[Departure]:
        """Remove the peer from every room and drop its record.

        With ``token`` (a connection's deliberate end), only while it is still
        the peer's current resume token: a peer resumed since is left alone
        and nothing is returned. Without (the reaper), unconditionally.
        """

    # -- rooms -----------------------------------------------------------
    async def join(self, room: str, member: Member, capacity: int) -> JoinResult:
        """Add ``member`` unless the room is full (``RoomFull``)."""

    async def leave(self, room: str, peer_id: str) -> Departure | None:
        """Remove the peer from the room; None if it was not in it."""

    async def update_meta(self, room: str, peer_id: str, meta: dict[str, Any]) -> list[str] | None:
        """Replace the peer's meta in the room; the others in it, or None if it is not in it."""

    async def members(self, room: str) -> list[Member]: ...

    async def is_member(self, room: str, peer_id: str) -> bool: ...

    async def rooms_of(self, peer_id: str) -> list[str]: ...

    async def counts(self) -> tuple[int, int]:
        """(rooms, peers) for the metrics."""

    # -- delivery --------------------------------------------------------
    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        """Route each delivery, in order, to its peer's node or mailbox."""

    # -- operations: the admin API (issue 16) -----------------------------
    async def room_list(self, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` non-empty rooms of the whole cluster, with their peer counts."""

    async def peek(self, room: str) -> list[tuple[Member, bool]]:
        """The room's members, each with whether its connection is up (not lost)."""

    async def kick(self, peer_id: str) -> list[Departure]:
        """An operator's kick, from any node, in one step: the peer leaves every
        room and its resume token dies ([] when it is unknown).

        A lost peer is forgotten outright. A connected one, or one whose resume
        is under way, stays marked *kicked* until whatever holds it ends (the
        service then delivers ``KICK`` to its connection): a join for it is
        refused, its resume's ``attach`` raises, and its ``release`` gives no
        token back.
        """
