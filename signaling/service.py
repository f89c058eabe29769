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
    PayloadTooLarge,
    RateLimited,
    TooManyRooms,
    Unauthorized,
    UnknownPeer,
    kicked,
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
    measure,
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


class RoomEvents(Protocol):
    """Where room and peer events go (the webhooks); must never block."""

    def emit(self, kind: str, room: str, peer_id: str | None = None, reason: str | None = None) -> None: ...


class _NoEvents:
    def emit(self, kind: str, room: str, peer_id: str | None = None, reason: str | None = None) -> None:
        pass


KICK = "\x00kick"
"""A control delivery, never sent to a client: the adapter holding the
peer's connection ends it (``kicked``). Not a valid event name, so no client
request can produce it."""


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
        events: RoomEvents | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.clock = clock
        self.monotonic = monotonic  # for rate limits: never jumps with the wall clock
        self.resuming: dict[str, Session] = {}
        """Peers whose resume is under way, and the session resuming each: a
        delivery for one of them belongs to that session (held behind its
        ack), never to the old connection it is replacing."""
        self.counter = counter or _NoCounter()
        self.events = events or _NoEvents()

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
            if not result.others:
                self.events.emit("room-created", request.room)
            self.events.emit("peer-joined", request.room, session.peer_id)
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
        self.resuming[resumed.peer_id] = session
        try:
            for room in resumed.rooms:
                if session.claims is not None and not session.claims.allows(room):
                    raise Unauthorized(f"your token does not allow room {room!r}")
            return await self._resumed(session, request, resumed, token)
        except Exception:
            # A failed request changes nothing: the peer is put back as it was
            # (its grace deadline, mail and dropped count), and the token it
            # presented still works. This session lets go of it first, so mail
            # handed back to its open connection does not come here.
            session.peer_id, session.registered, session.joined_any, session.resume_token = previous
            if self.resuming.get(resumed.peer_id) is session:
                del self.resuming[resumed.peer_id]
            await self.backend.release(resumed, resume_token, token)
            raise
        finally:
            if self.resuming.get(resumed.peer_id) is session:
                del self.resuming[resumed.peer_id]

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
        # The usual ack for that room; a room it was not in is joined afresh.
        outcome = await self._join(session, JoinRequest(request.room, request.meta, request.webrtc, None))
        if own is not None:
            await self.backend.forget(own)
        kept, dropped = await self.backend.attach(resumed.peer_id)
        kept = [*resumed.kept, *kept]
        if any(d.event == KICK for d in kept):
            await self._depart(resumed.peer_id, "kicked")  # kicked while resuming: the kick wins
            raise kicked()
        dropped += resumed.dropped
        log.info("resume %s rooms=%s kept=%d dropped=%d", resumed.peer_id, resumed.rooms, len(kept), dropped)
        rooms = resumed.rooms if request.room in resumed.rooms else [*resumed.rooms, request.room]
        outcome.ack.update(resumed=True, rooms=rooms, dropped=dropped)
        outcome.then = [d for d in kept if d.event != KICK]  # a control, never shown
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
        self.events.emit("peer-updated", request.room, session.peer_id)
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
        self.events.emit("peer-left", room, peer_id, reason)
        if not remaining:
            self.events.emit("room-closed", room)

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

    # -- operations: the admin API (issue 16) -----------------------------
    async def list_rooms(self, limit: int) -> list[tuple[str, int]]:
        return await self.backend.room_list(limit)

    async def peek(self, room: str) -> list[dict[str, Any]]:
        return [
            {**member.to_wire(), "connected": connected}
            for member, connected in await self.backend.peek(room)
        ]

    async def kick(self, room: str, peer_id: str) -> None:
        """Remove the peer everywhere; it may not resume. Raises ``UnknownPeer``.

        One backend step takes it out of every room and kills its resume
        token, whatever state it is in (connected, lost, resuming, its
        connection dropping right now), so the kick cannot be lost in a race;
        then the node holding its connection, if any, ends it (``KICK``).
        """
        if not await self.backend.is_member(room, peer_id):
            raise UnknownPeer(f"no peer {peer_id!r} in room {room!r}")
        departures = await self.backend.kick(peer_id)
        log.info("kicked %s", peer_id)
        for departure in departures:
            await self._announce_left(departure.room, peer_id, departure.remaining, "kicked")
        await self.backend.deliver([Delivery(peer_id, KICK, {"room": room})])

    async def kicked(self, session: Session) -> None:
        """The adapter got a ``KICK`` for this connection: forget its peer, before
        the connection ends, so its resume token is dead by the time it could retry."""
        if not session.registered:
            return
        session.registered = False
        log.info("kicked %s", session.peer_id)
        await self._depart(session.peer_id, "kicked")

    async def server_relay(self, room: str, event: str, data: Any) -> int | None:
        """A relay ``from: "server"`` to every peer of the room; None when it is empty."""
        size, binary = measure(data)
        if size > self.settings.max_relay_bytes:
            raise PayloadTooLarge(f"data is {size} bytes, over {self.settings.max_relay_bytes}")
        targets = [m.peer_id for m in await self.backend.members(room)]
        if not targets:
            return None
        payload = {"room": room, "from": "server", "event": event, "data": data}
        await self.backend.deliver([Delivery(pid, "relay", payload, size, binary) for pid in targets])
        self.counter.relayed("relay", len(targets), size * len(targets))
        return len(targets)
