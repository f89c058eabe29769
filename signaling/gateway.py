"""The Socket.IO face of the service, on the project's own protocol core.

Requests are handled in the order each client sent them: the transport
hands a connection's messages over one at a time (from its websocket's
handler or its POST), and one request, ack included, is finished before the
next is read. Acks are answered here, which is how we know whether the
client asked for one (else a failure becomes ``rejected``) and how a joiner
gets its ack before any event of the room.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from .auth import MIN_SECRET_BYTES, TokenClaims, verify_token
from .backends.base import Delivery
from .errors import RateLimited, SignalingError, Unauthorized, Unavailable
from .metrics import Metrics
from .protocol import REQUEST_EVENTS, parse_request
from .rate_limit import ConnectionLimiter, Verdict
from .router import Router
from .service import KICK, Session, SignalingService
from .settings import Settings
from .transport import Connection, EngineServer
from .wire import socketio as sio
from .wire.engineio import Reason

log = logging.getLogger("signaling")


class Client:
    """One connection, as Socket.IO and the router see it."""

    __slots__ = ("closing", "conn", "connect_by", "decoder", "held", "limiter", "session", "sid")

    def __init__(self, conn: Connection, decoder: sio.Decoder, connect_by: float) -> None:
        self.conn = conn
        self.decoder = decoder
        self.connect_by: float | None = connect_by  # until the Socket.IO connect
        self.session: Session | None = None
        self.limiter: ConnectionLimiter | None = None
        self.sid = ""
        self.held: list[Delivery] | None = None
        self.closing = False

    @property
    def peer_id(self) -> str:
        return self.session.peer_id if self.session is not None else ""

    def send_deliveries(self, deliveries: list[Delivery], encoded: dict[int, Any]) -> None:
        write = self.conn.write_message
        for delivery in deliveries:
            # A room-wide relay shares one payload object: encode it once.
            key = id(delivery.payload)
            parts = encoded.get(key)
            if parts is None:
                parts = encode_delivery(delivery)
                encoded[key] = parts
            write(parts)


def encode_delivery(delivery: Delivery) -> str | list[str | bytes]:
    """Only a relay can carry binary, and its request told whether it does."""
    binary = delivery.binary if delivery.event == "relay" else False
    return sio.encode_event([delivery.event, delivery.payload], binary)


class Gateway:
    def __init__(self, settings: Settings, service: SignalingService, metrics: Metrics) -> None:
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.router = Router(service.resuming, {KICK: self._kick})
        self.engine = EngineServer(settings, self, self._opened, on_refused=metrics.refused)
        if settings.auth_secret is not None and len(settings.auth_secret.encode()) < MIN_SECRET_BYTES:
            log.warning(
                "--auth-secret is %d bytes: use at least %d random bytes for HS256",
                len(settings.auth_secret.encode()), MIN_SECRET_BYTES,
            )

    async def deliver(self, deliveries: Any) -> None:
        """The backends' sink."""
        await self.router.deliver(deliveries)

    # -- transport hooks -------------------------------------------------
    def _opened(self, conn: Connection) -> None:
        now = asyncio.get_running_loop().time()
        conn.app_data = Client(conn, sio.Decoder(self.settings.max_relay_bytes),
                               now + self.settings.connect_timeout)

    def next_deadline(self, conn: Connection) -> float | None:
        client: Client = conn.app_data
        due = client.connect_by
        since = client.decoder.pending_since
        if since is not None:
            late = since + sio.BINARY_DEADLINE
            due = late if due is None else min(due, late)
        return due

    def on_deadline(self, conn: Connection, now: float) -> None:
        client: Client = conn.app_data
        if client.connect_by is not None and now >= client.connect_by:
            conn.drop(f"no Socket.IO connect within {self.settings.connect_timeout:g} s")
        elif client.decoder.overdue(now):
            conn.drop(f"binary packet still missing attachments after {sio.BINARY_DEADLINE:g} s")

    async def on_message(self, conn: Connection, message: str | bytes) -> None:
        client: Client = conn.app_data
        if conn.ended:
            return
        waiting = client.decoder.pending_since
        try:
            packet = client.decoder.feed(message, asyncio.get_running_loop().time())
        except sio.ProtocolError as exc:
            conn.drop(str(exc))
            return
        if packet is None:
            if waiting is None:
                conn.reschedule()  # the attachments' deadline
            return
        if isinstance(packet, sio.Event):
            await self._event(client, packet.args, packet.ack_id)
        elif isinstance(packet, sio.Connect):
            self._connect(client, packet)
        elif packet.namespace == sio.NAMESPACE and client.session is not None:
            # The client leaves "/": its peer goes (left); the Engine.IO session
            # stays, as in the protocol, and may connect again (or is closed
            # by the connect deadline). Done before the next request is read.
            session, client.session = client.session, None
            client.decoder.connected = False
            client.connect_by = asyncio.get_running_loop().time() + self.settings.connect_timeout
            conn.reschedule()
            await self._disconnected(client, session, Reason.CLIENT_CLOSE, False)

    def on_close(self, conn: Connection, reason: Reason, lost: bool) -> Any:
        client: Client = conn.app_data
        client.closing = True
        session = client.session
        if session is None:
            return None
        client.session = None
        return self._disconnected(client, session, reason, lost)

    async def _disconnected(self, client: Client, session: Session, reason: Reason, lost: bool) -> None:
        self.metrics.connected_clients.dec()
        router = self.router
        if router.by_peer.get(session.peer_id) is client:
            del router.by_peer[session.peer_id]
        router.joining.discard(client)
        log.info("disconnect %s (%s, %s)", session.peer_id, reason.value, "lost" if lost else "left")
        await self.service.disconnected(session, lost=lost)

    # -- connect ---------------------------------------------------------
    def _connect(self, client: Client, packet: sio.Connect) -> None:
        conn = client.conn
        if packet.namespace != sio.NAMESPACE:
            conn.write_message(sio.encode_connect_error(
                packet.namespace, {"message": "Unable to connect: only the namespace / is served"}))
            return
        if client.session is not None:
            return  # already connected: the first connection stays as it is
        try:
            claims = self._authenticate(packet.auth)
        except Unauthorized as exc:
            self.metrics.refused("unauthorized", exc.message)  # counted, its log throttled
            conn.write_message(sio.encode_connect_error(
                sio.NAMESPACE, {"message": exc.message, "data": exc.to_wire()}))
            return
        client.connect_by = None
        client.session = self.service.open_session(claims)
        client.limiter = ConnectionLimiter(self.settings.rate_limit, time.monotonic())
        client.sid = secrets.token_urlsafe(15)
        client.decoder.connected = True
        self.metrics.connected_clients.inc()
        conn.write_message(sio.encode_connect(client.sid))
        log.debug("connect %s", client.session.peer_id)

    def _authenticate(self, auth: Any) -> TokenClaims | None:
        secret = self.settings.auth_secret
        if secret is None:
            return None
        token = auth.get("token") if isinstance(auth, dict) else None
        return verify_token(token, secret, now=time.time())

    # -- requests --------------------------------------------------------
    async def _event(self, client: Client, args: list[Any], ack_id: int | None) -> None:
        conn = client.conn
        session, limiter = client.session, client.limiter
        assert session is not None and limiter is not None
        event: str = args[0]
        then: list[Delivery] = []
        verdict = limiter.admit(time.monotonic())
        if verdict is Verdict.DISCONNECT:
            conn.drop("far past its rate limit")
            return
        router = self.router
        if event == "join":
            router.hold(client)
        try:
            if verdict is Verdict.REFUSE:
                raise RateLimited(f"over {self.settings.rate_limit:g} requests a second: slow down")
            request = parse_request(event, args[1:], max_relay_bytes=self.settings.max_relay_bytes)
            before = session.peer_id
            router.by_peer.setdefault(before, client)
            try:
                outcome = await self.service.handle(session, request)
            except SignalingError:
                raise
            except Exception as exc:
                # Refuse the request rather than drop a client that did nothing wrong.
                log.exception("%s from %s failed", event, session.peer_id)
                raise Unavailable(
                    f"the server could not do this now ({type(exc).__name__}); retry"
                ) from None
            if session.peer_id != before:
                router.unbind(client, before)  # resumed: it speaks for another peer now
                if client.held is not None:
                    router.joining.add(client)
            self._bind(client)
            reply: dict[str, Any] = outcome.ack
            then = outcome.then
            self.metrics.request(_event_label(event), "ok")
        except SignalingError as exc:
            reply = {"ok": False, "error": exc.to_wire()}
            self.metrics.request(_event_label(event), exc.code)
            log.debug("refused %s from %s: %s", event, session.peer_id, exc.message)
        if ack_id is not None:
            conn.write_message(sio.encode_ack(ack_id, [reply]))
        elif not reply["ok"]:
            conn.write_message(sio.encode_event(
                ["rejected", {"event": event, "error": reply["error"]}], False))
        held = router.release(client) if client.held is not None else []
        if not reply["ok"] and held:
            # A failed resume: mail held for the peer it tried to take goes back to it.
            own = session.peer_id
            await self.service.backend.deliver([d for d in held if d.peer_id != own])
            held = [d for d in held if d.peer_id == own]
        if then or held:
            client.send_deliveries([*then, *held], {})

    def _bind(self, client: Client) -> None:
        """Route the session's peer to ``client``; a resumed peer's old link goes."""
        if client.closing:
            return
        previous = self.router.bind(client)
        if previous is not None and isinstance(previous, Client):
            # The same peer resumed on a new connection before the old one
            # was seen to die: the old one no longer speaks for it.
            if previous.session is not None:
                previous.session.registered = False
            previous.closing = True
            previous.conn.end(Reason.SERVER_CLOSE, abort=True)

    async def _kick(self, client: Client) -> None:
        """An admin's kick (ops): forget the peer (reason ``kicked``), tell the client, close."""
        session = client.session
        client.closing = True
        if session is not None:
            await self.service.kicked(session)
        client.conn.write_message(sio.encode_disconnect())
        client.conn.end(Reason.SERVER_CLOSE)

    async def close_all(self) -> None:
        await self.engine.close_all()


def _event_label(event: str) -> str:
    return event if event in REQUEST_EVENTS else "other"
