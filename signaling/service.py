"""The rules of the contract, applied through a ``Backend``.

Knows nothing of Socket.IO: the adapter hands it parsed requests for a
``Session`` (one client connection) and gets back the ack to send, plus any
messages the requester must receive right after that ack. Deliveries to
other peers go out through the backend, in order, before the call returns.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auth import TokenClaims
from .backends.base import Backend, Delivery, Member, Resumed
from .errors import (
    InvalidPayload,
    NotInRoom,
    RateLimited,
    SignalingError,
    TooManyRooms,
    Unauthorized,
    UnknownPeer,
)
from .ice import IceServer, ice_servers
from .protocol import (
    IceServersRequest,
    JoinRequest,
    LeaveRequest,
    RelayRequest,
    Request,
    SignalRequest,
    UpdateRequest,
)
from .rate_limit import ByteBudget
from .settings import Settings

log = logging.getLogger("signaling")


def new_peer_id() -> str:
    """128 random bits in URL-safe characters (22 of them)."""
    return secrets.token_urlsafe(16)


def new_resume_token() -> str:
    return secrets.token_urlsafe(32)


class RelayCounter(Protocol):
    def relayed(self, kind: str, messages: int, size: int) -> None: ...


class _NoCounter:
    def relayed(self, kind: str, messages: int, size: int) -> None:
        pass


@dataclass(slots=True)
class Session:
    """One client connection as the service sees it."""

    peer_id: str
    claims: TokenClaims | None = None
    registered: bool = False
    joined_any: bool = False
    resume_token: str | None = None
    budget: ByteBudget = field(default_factory=lambda: ByteBudget(0, 0.0))


@dataclass(slots=True)
class Outcome:
    ack: dict[str, Any]
    then: list[Delivery] = field(default_factory=list)


class SignalingService:
    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        counter: RelayCounter | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.clock = clock
        self.monotonic = monotonic  # for rate limits: never jumps with the wall clock
        self.counter = counter or _NoCounter()

    def open_session(self, claims: TokenClaims | None = None) -> Session:
        budget = ByteBudget(self.settings.rate_limit_bytes, self.monotonic())
        return Session(peer_id=new_peer_id(), claims=claims, budget=budget)

    async def handle(self, session: Session, request: Request) -> Outcome:
        if isinstance(request, JoinRequest):
            return await self._join(session, request)
        if isinstance(request, LeaveRequest):
            return await self._leave(session, request)
        if isinstance(request, SignalRequest):
            return await self._signal(session, request)
        if isinstance(request, UpdateRequest):
            return await self._update(session, request)
        if isinstance(request, IceServersRequest):
            return Outcome(ack={"ok": True, "iceServers": self._ice_servers(session)})
        return await self._relay(session, request)

    # -- join / leave ----------------------------------------------------
    async def _join(self, session: Session, request: JoinRequest) -> Outcome:
        self._check_allowed(session, request.room)
        if request.resume is not None:
            return await self._resume(session, request, request.resume)
        if not session.registered:
            token = new_resume_token()
            await self.backend.register(session.peer_id, token)
            session.registered = True
            session.resume_token = token
        await self._check_room_count(session, request.room)
        member = Member(session.peer_id, request.meta, request.webrtc)
        result = await self.backend.join(request.room, member, self.settings.max_peers_per_room)
        session.joined_any = True
        if not result.already_member:
            log.info("join %s room=%s", session.peer_id, request.room)
            announce = {"room": request.room, **member.to_wire()}
            await self.backend.deliver(
                [Delivery(other.peer_id, "peer-joined", announce) for other in result.others]
            )
        return Outcome(ack=self._join_ack(session, request.room, result.others))

    async def _check_room_count(self, session: Session, room: str) -> None:
        limit = self.settings.max_rooms_per_connection
        rooms = await self.backend.rooms_of(session.peer_id)
        if len(rooms) >= limit and room not in rooms:
            raise TooManyRooms(
                f"this connection is in {len(rooms)} rooms, the most allowed "
                f"(--max-rooms-per-connection {limit}): leave one first"
            )

    async def _resume(self, session: Session, request: JoinRequest, resume_token: str) -> Outcome:
        if session.joined_any:
            raise InvalidPayload("resume must be the first join on a new connection")
        previous = (session.peer_id, session.registered, session.joined_any, session.resume_token)
        token = new_resume_token()
        resumed = await self.backend.resume(resume_token, token)
        try:
            for room in resumed.rooms:
                if session.claims is not None and not session.claims.allows(room):
                    raise Unauthorized(f"your token does not allow room {room!r}")
            return await self._resumed(session, request, resumed, token)
        except SignalingError:
            # A failed request changes nothing: the peer stays lost, with its
            # mail, and the token it presented still works. Until it is rotated
            # back, the peer's current token is the new one.
            await self.backend.lose(resumed.peer_id, self.clock() + self.settings.resume_grace, token)
            await self.backend.deliver(resumed.kept)
            await self.backend.rotate_token(resumed.peer_id, resume_token)
            session.peer_id, session.registered, session.joined_any, session.resume_token = previous
            raise

    async def _resumed(
        self, session: Session, request: JoinRequest, resumed: Resumed, token: str
    ) -> Outcome:
        # A join refused (room full) registered this connection's own peer; it
        # goes once the resume has succeeded, so a failed one leaves it whole.
        own = session.peer_id if session.registered else None
        session.peer_id = resumed.peer_id
        session.registered = True
        session.joined_any = True
        session.resume_token = token
        log.info(
            "resume %s rooms=%s kept=%d dropped=%d",
            resumed.peer_id, resumed.rooms, len(resumed.kept), resumed.dropped,
        )
        # The usual ack for that room; a room it was not in is joined afresh.
        outcome = await self._join(session, JoinRequest(request.room, request.meta, request.webrtc, None))
        if own is not None:
            await self.backend.forget(own)
        rooms = resumed.rooms if request.room in resumed.rooms else [*resumed.rooms, request.room]
        outcome.ack.update(resumed=True, rooms=rooms, dropped=resumed.dropped)
        outcome.then = resumed.kept
        return outcome

    def _join_ack(self, session: Session, room: str, others: list[Member]) -> dict[str, Any]:
        return {
            "ok": True,
            "room": room,
            "peerId": session.peer_id,
            "peers": [m.to_wire() for m in others],
            "iceServers": self._ice_servers(session),
            "resumeToken": session.resume_token,
        }

    def _ice_servers(self, session: Session) -> list[IceServer]:
        """The ICE servers for this peer, TURN credentials minted now."""
        return ice_servers(
            stun=list(self.settings.stun),
            turn_urls=list(self.settings.turn_url),
            turn_secret=self.settings.turn_secret,
            turn_ttl=self.settings.turn_ttl,
            peer_id=session.peer_id,
            now=self.clock(),
        )

    async def _update(self, session: Session, request: UpdateRequest) -> Outcome:
        others = await self.backend.update_meta(request.room, session.peer_id, request.meta)
        if others is None:
            raise NotInRoom(f"you are not in room {request.room!r}: join it first")
        payload = {"room": request.room, "peerId": session.peer_id, "meta": request.meta}
        await self.backend.deliver([Delivery(pid, "peer-updated", payload) for pid in others])
        return Outcome(ack={"ok": True})

    async def _leave(self, session: Session, request: LeaveRequest) -> Outcome:
        departure = await self.backend.leave(request.room, session.peer_id)
        if departure is None:
            raise NotInRoom(f"you are not in room {request.room!r}")
        log.info("leave %s room=%s", session.peer_id, request.room)
        await self._announce_left(departure.room, session.peer_id, departure.remaining, "left")
        return Outcome(ack={"ok": True})

    async def _announce_left(
        self, room: str, peer_id: str, remaining: list[str], reason: str
    ) -> None:
        payload = {"room": room, "peerId": peer_id, "reason": reason}
        await self.backend.deliver([Delivery(pid, "peer-left", payload) for pid in remaining])

    # -- messages --------------------------------------------------------
    def _check_budget(self, session: Session) -> None:
        if not session.budget.admit(self.monotonic()):
            raise RateLimited(
                f"over {self.settings.rate_limit_bytes:,} bytes a second handed to peers "
                "(--rate-limit-bytes; a room-wide relay counts once per receiver): slow down"
            )

    async def _signal(self, session: Session, request: SignalRequest) -> Outcome:
        self._check_budget(session)
        await self._check_route(session, request.room, request.to)
        payload = {"room": request.room, "from": session.peer_id, "data": request.data}
        await self.backend.deliver([Delivery(request.to, "signal", payload, request.size)])
        session.budget.charge(request.size, self.monotonic())
        self.counter.relayed("signal", 1, request.size)
        return Outcome(ack={"ok": True})

    async def _relay(self, session: Session, request: RelayRequest) -> Outcome:
        self._check_budget(session)
        if request.to is not None:
            await self._check_route(session, request.room, request.to)
            targets = [request.to]
        else:
            members = [m.peer_id for m in await self.backend.members(request.room)]
            if session.peer_id not in members:
                raise NotInRoom(f"you are not in room {request.room!r}: join it first")
            targets = [pid for pid in members if pid != session.peer_id]
        payload = {
            "room": request.room,
            "from": session.peer_id,
            "event": request.event,
            "data": request.data,
        }
        await self.backend.deliver([Delivery(pid, "relay", payload, request.size, request.binary) for pid in targets])
        session.budget.charge(request.size * len(targets), self.monotonic())
        self.counter.relayed("relay", len(targets), request.size * len(targets))
        return Outcome(ack={"ok": True, "delivered": len(targets)})

    async def _check_route(self, session: Session, room: str, to: str) -> None:
        if not await self.backend.is_member(room, session.peer_id):
            raise NotInRoom(f"you are not in room {room!r}: join it first")
        if to == session.peer_id or not await self.backend.is_member(room, to):
            raise UnknownPeer(f"no peer {to!r} in room {room!r}")

    def _check_allowed(self, session: Session, room: str) -> None:
        if session.claims is not None and not session.claims.allows(room):
            raise Unauthorized(f"your token does not allow room {room!r}")

    # -- connection lifecycle --------------------------------------------
    async def disconnected(self, session: Session, *, lost: bool) -> None:
        """The connection ended: on purpose (leave everything) or lost (grace).

        It speaks for its peer only as it knew it: by the resume token it
        holds. A peer resumed since (a new token, on another connection, maybe
        on another node) is left alone by the old connection's end, however
        late that end comes (docs/reliability.md, bug 7).
        """
        if not session.registered:
            return
        token = session.resume_token
        if lost and self.settings.resume_grace > 0:
            log.info("lost %s: kept for %ss", session.peer_id, self.settings.resume_grace)
            await self.backend.lose(session.peer_id, self.clock() + self.settings.resume_grace, token)
            return
        await self._depart(session.peer_id, "disconnected" if lost else "left", token)

    async def expire(self) -> int:
        """Give up on lost peers past their grace time; returns how many.

        The backend hands each one out once: a departure that fails must not
        stop the others of the round, or their records would stay for good.
        """
        gone = await self.backend.expired(self.clock())
        for peer_id in gone:
            log.info("gone %s: resume grace over", peer_id)
            try:
                await self._depart(peer_id, "disconnected")
            except Exception:  # logged; the next peer still goes
                log.exception("gone %s: departure failed", peer_id)
        return len(gone)

    async def _depart(self, peer_id: str, reason: str, token: str | None = None) -> None:
        """Forget the peer and tell its rooms; with ``token``, only while it is current."""
        for departure in await self.backend.forget(peer_id, token=token):
            await self._announce_left(departure.room, peer_id, departure.remaining, reason)
