"""The Socket.IO face of the service: the only module that imports socketio.

Requests are handled in the order each client sent them: the server runs
with ``async_handlers=False``, so python-engineio hands a connection's
packets to us one at a time from its read loop (websocket) or POST handler
(polling), and we finish one request, ack included, before reading the next.
We answer acks ourselves rather than from a handler's return value, which
is how we know whether the client asked for one (else failures become
``rejected``) and how the joiner gets its ack before any event of the room.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import socketio
from socketio import packet as sio_packet

from . import socketio_fixes
from .auth import MIN_SECRET_BYTES, TokenClaims, verify_token
from .backends.base import Delivery
from .errors import RateLimited, SignalingError, Unauthorized, Unavailable
from .metrics import Metrics
from .origins import OriginPolicy
from .protocol import REQUEST_EVENTS, parse_request
from .rate_limit import ConnectionLimiter, Verdict
from .service import KICK, Session, SignalingService
from .settings import Settings

log = logging.getLogger("signaling")

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
NAMESPACE = "/"
MAX_ATTACHMENTS = 10
MAX_ACK_ID_DIGITS = 100  # as python-socketio's decoder
_NO_ENVIRON: dict[str, Any] = {}


class _OrjsonCodec:
    """The ``json`` python-socketio's packets use, on orjson (~5x faster).

    orjson reads integers beyond 64 bits as floats (as JavaScript does) and
    refuses NaN and nesting past 1,024 levels, which drops the client.
    """

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except orjson.JSONEncodeError:  # integers beyond 64 bits
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return orjson.loads(text)


class FastPacket(sio_packet.Packet):  # type: ignore[misc]
    json = _OrjsonCodec


@dataclass(slots=True)
class Connection:
    """One connected Socket.IO client."""

    eio_sid: str
    sid: str
    session: Session
    limiter: ConnectionLimiter
    held: list[Delivery] | None = None  # deliveries waiting behind an ack
    closing: bool = False


class _RoomlessManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's manager without a Socket.IO room per client.

    Rooms here are the service's, not python-socketio's, and nothing emits
    to a client's own room. Upstream keeps one (a bidict, ~600 B) per
    connection, and each disconnect scans every room of the namespace, so
    with one room per client a disconnect cost O(clients).
    """

    async def pre_connect(self, eio_sid: str, namespace: str) -> Any:
        sid = await super().pre_connect(eio_sid, namespace)
        if sid is not None:
            self.basic_leave_room(sid, namespace, sid)
        return sid


class SignalingSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, settings: Settings, service: SignalingService, metrics: Metrics) -> None:
        super().__init__(
            async_mode="aiohttp",
            async_handlers=False,
            client_manager=_RoomlessManager(),
            # A callable: python-engineio takes a list *instead of* same origin.
            cors_allowed_origins=OriginPolicy(settings.allowed_origins, metrics.refused),  # issue 13 (rules): counted
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            max_http_buffer_size=settings.max_http_buffer_size,
            http_compression=False,
            allow_upgrades=True,
            transports=["polling", "websocket"],
            logger=False,
            engineio_logger=False,
        )
        socketio_fixes.install(self.eio, websocket_compression=settings.websocket_compression)
        self.packet_class = FastPacket
        self.settings = settings
        self.service = service
        self.metrics = metrics
        self.by_eio_sid: dict[str, Connection] = {}
        self.by_peer_id: dict[str, Connection] = {}
        self.shutting_down = False  # the node is going away: every close is a lost connection
        self.on("connect", self._on_connect)
        self.on("disconnect", self._on_disconnect)
        if settings.auth_secret is not None and len(settings.auth_secret.encode()) < MIN_SECRET_BYTES:
            log.warning(
                "--auth-secret is %d bytes: use at least %d random bytes for HS256",
                len(settings.auth_secret.encode()), MIN_SECRET_BYTES,
            )

    # -- connection lifecycle --------------------------------------------
    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        eio_socket = self.eio.sockets.get(eio_sid)
        if eio_socket is not None:
            socketio_fixes.adopt(eio_socket)
            eio_socket.connect_deadline = asyncio.get_running_loop().call_later(
                self.settings.connect_timeout, self._connect_deadline, eio_sid, eio_socket
            )
        # python-socketio keeps each session's environ (headers and all) for
        # get_environ(), which nothing here calls: keep an empty one instead.
        return await super()._handle_eio_connect(eio_sid, _NO_ENVIRON)

    def _connect_deadline(self, eio_sid: str, eio_socket: Any) -> None:
        """Close an Engine.IO session that never completed the Socket.IO connect."""
        if self.eio.sockets.get(eio_sid) is not eio_socket or eio_sid in self.by_eio_sid:
            return
        socketio_fixes.spawn(
            self.drop(eio_sid, f"no Socket.IO connect within {self.settings.connect_timeout:g} s")
        )

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        claims = self._authenticate(auth)
        eio_sid = self.manager.eio_sid_from_sid(sid, NAMESPACE)
        eio_socket = self.eio.sockets.get(eio_sid)
        deadline = getattr(eio_socket, "connect_deadline", None)
        if deadline is not None:  # its timer would hold the session's memory for 10 s
            deadline.cancel()
            eio_socket.connect_deadline = None
        session = self.service.open_session(claims)
        conn = Connection(eio_sid, sid, session, ConnectionLimiter(self.settings.rate_limit, time.monotonic()))
        self.by_eio_sid[eio_sid] = conn
        self.metrics.connected_clients.inc()
        log.debug("connect %s", session.peer_id)

    def _authenticate(self, auth: Any) -> TokenClaims | None:
        secret = self.settings.auth_secret
        if secret is None:
            return None
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            return verify_token(token, secret, now=time.time())
        except Unauthorized as exc:
            self.metrics.refused("unauthorized", exc.message)  # issue 13 (rules): counted, log throttled
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_wire()) from None

    async def _on_disconnect(self, sid: str, reason: str) -> None:
        eio_sid = self.manager.eio_sid_from_sid(sid, NAMESPACE)
        conn = self.by_eio_sid.pop(eio_sid, None)
        if conn is None:
            return
        self.metrics.connected_clients.dec()
        if self.by_peer_id.get(conn.session.peer_id) is conn:
            del self.by_peer_id[conn.session.peer_id]
        lost = self._was_lost(eio_sid, reason)
        log.info("disconnect %s (%s, %s)", conn.session.peer_id, reason, "lost" if lost else "left")
        await self.service.disconnected(conn.session, lost=lost)

    def _was_lost(self, eio_sid: str, reason: str) -> bool:
        """A lost connection keeps its peer for the resume grace; see protocol.md."""
        eio_socket = self.eio.sockets.get(eio_sid)
        if getattr(eio_socket, "violation", None):
            return False
        if self.shutting_down:
            return True
        if reason == self.reason.TRANSPORT_CLOSE:
            code = getattr(eio_socket, "ws_close_code", None)
            return code not in socketio_fixes.DELIBERATE_CLOSE_CODES
        return reason in (self.reason.PING_TIMEOUT, self.reason.TRANSPORT_ERROR)

    # -- requests --------------------------------------------------------
    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        why = _event_shape_error(data)
        if why is not None:
            await self.drop(eio_sid, why)
            return
        conn = self.by_eio_sid.get(eio_sid)
        if conn is None or (namespace or NAMESPACE) != NAMESPACE:
            await self.drop(eio_sid, "event before the Socket.IO connect")
            return
        event: str = data[0]
        then: list[Delivery] = []
        verdict = conn.limiter.admit(time.monotonic())
        if verdict is Verdict.DISCONNECT:
            await self.drop(eio_sid, "far past its rate limit")
            return
        if event == "join":
            conn.held = []
        try:
            if verdict is Verdict.REFUSE:
                raise RateLimited(
                    f"over {self.settings.rate_limit:g} requests a second: slow down"
                )
            request = parse_request(event, data[1:], max_relay_bytes=self.settings.max_relay_bytes)
            before = conn.session.peer_id
            self.by_peer_id.setdefault(before, conn)
            try:
                outcome = await self.service.handle(conn.session, request)
            except SignalingError:
                raise
            except Exception as exc:
                # Refuse the request rather than drop a client that did
                # nothing wrong (the dispatcher drops on any other error).
                log.exception("%s from %s failed", event, conn.session.peer_id)
                raise Unavailable(f"the server could not do this now ({type(exc).__name__}); retry") from None
            if conn.session.peer_id != before and self.by_peer_id.get(before) is conn:
                del self.by_peer_id[before]  # resumed: the connection speaks for another peer now
            await self._bind(conn)
            reply: dict[str, Any] = outcome.ack
            then = outcome.then
            self.metrics.request(_event_label(event), "ok")
        except SignalingError as exc:
            reply = {"ok": False, "error": exc.to_wire()}
            self.metrics.request(_event_label(event), exc.code)
            log.debug("refused %s from %s: %s", event, conn.session.peer_id, exc.message)
        if id is not None:
            await self._send_encoded(eio_sid, f"3{id}{_OrjsonCodec.dumps([reply])}")
        elif not reply["ok"]:
            await self._emit_to(eio_sid, "rejected", {"event": event, "error": reply["error"]})
        held, conn.held = conn.held, None
        if not reply["ok"] and held:  # issue 13 (rules): a failed resume's held mail goes back to its peer
            await self.service.backend.deliver([d for d in held if d.peer_id != conn.session.peer_id])
            held = [d for d in held if d.peer_id == conn.session.peer_id]
        for delivery in [*then, *(held or ())]:
            await self._emit_to(eio_sid, delivery.event, delivery.payload)

    async def _bind(self, conn: Connection) -> None:
        """Route the session's peer to ``conn``; a resumed peer's old link goes."""
        previous = self.by_peer_id.get(conn.session.peer_id)
        if previous is conn:
            return
        self.by_peer_id[conn.session.peer_id] = conn
        if previous is not None:
            # The same peer resumed on a new connection before the old one
            # was seen to die: the old one no longer speaks for it.
            previous.session.registered = False
            previous.closing = True
            await socketio_fixes.force_close(self.eio, previous.eio_sid, abort=True)

    async def _emit_to(self, eio_sid: str, event: str, payload: dict[str, Any]) -> None:
        await self._send_encoded(eio_sid, self._encode_event(event, payload))

    def _encode_event(
        self, event: str, payload: dict[str, Any], binary: bool | None = None
    ) -> str | list[str | bytes]:
        """An EVENT packet, encoded (a list with its attachments when it has binary).

        Only a relay can carry binary, and its request already told whether
        it does (None: walk it); anything else is ``2`` and its JSON, without
        upstream's packet object and walk over the payload.
        """
        if event != "relay" or binary is False:
            return "2" + _OrjsonCodec.dumps([event, payload])
        parts: str | list[str | bytes] = self.packet_class(
            sio_packet.EVENT, namespace=NAMESPACE, data=[event, payload], binary=binary
        ).encode()
        return parts

    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        """The backend's sink: hand each delivery to the connection holding its peer."""
        encoded: dict[int, Any] = {}
        for delivery in deliveries:
            conn = self.by_peer_id.get(delivery.peer_id)
            # issue 13 (rules): a peer being resumed gets nothing on the connection it replaces
            if conn is None or conn.closing or delivery.peer_id in self.service.resuming:
                conn = self._resuming(delivery.peer_id)
                if conn is None:
                    continue
            if delivery.event == KICK:  # ops hook (issue 16): an admin kick ends this connection
                await self._kick(conn)
                continue
            if conn.held is not None:
                conn.held.append(delivery)
                continue
            # A room-wide relay shares one payload object: encode it once.
            key = id(delivery.payload)
            parts = encoded.get(key)
            if parts is None:
                parts = self._encode_event(delivery.event, delivery.payload, delivery.binary)
                encoded[key] = parts
            await self._send_encoded(conn.eio_sid, parts)

    async def _kick(self, conn: Connection) -> None:  # ops hook (issue 16)
        """Forget the peer (reason ``kicked``), then tell the client and close."""
        conn.closing = True
        await self.service.kicked(conn.session)
        await self.disconnect(conn.sid)
        await socketio_fixes.force_close(self.eio, conn.eio_sid)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        await self._send_encoded(eio_sid, pkt.encode())

    async def _send_encoded(self, eio_sid: str, parts: str | bytes | list[str | bytes]) -> None:
        """Send an encoded Socket.IO packet (a list when it has attachments)."""
        eio_socket = self.eio.sockets.get(eio_sid)
        if eio_socket is None:
            return
        for part in parts if isinstance(parts, list) else (parts,):
            if not isinstance(eio_socket, socketio_fixes.HardenedSocket) or not eio_socket.write_message(part):
                await self.eio.send(eio_sid, part)

    def _resuming(self, peer_id: str) -> Connection | None:
        """The connection whose join is resuming ``peer_id`` right now, if any.

        It is bound to the peer only once its join is answered; with a shared
        backend a message for the peer can arrive before that, and must wait
        behind the ack like any other.
        """
        for conn in self.by_eio_sid.values():
            if conn.held is not None and conn.session.peer_id == peer_id and not conn.closing:
                return conn
        return None

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Decode and dispatch one Socket.IO packet, dropping a client that breaks the protocol.

        Replaces python-socketio's dispatcher, which only logs a packet that
        does not decode, stores a binary packet's header whatever its
        attachment count (up to 10 digits: unbounded memory), uses a
        placeholder's ``num`` unchecked as a list index (-1 picks the last
        attachment), takes a text packet as an attachment, and passes ACKs
        for ids it never sent to its callback table. Reserved event names
        (``connect``, ``disconnect``...) would reach the real handlers.
        Tests: tests/security/test_protocol.py (B18-B32; each fails on the
        upstream dispatcher).
        """
        try:
            why = await self._dispatch(eio_sid, data)
        except Exception as exc:  # noqa: BLE001 - ValueError, RecursionError, ...: the client's fault
            why = f"undecodable Socket.IO packet ({type(exc).__name__})"
        if why is not None:
            await self.drop(eio_sid, why)

    async def _dispatch(self, eio_sid: str, data: Any) -> str | None:
        pending = self._binary_packet.get(eio_sid)
        if pending is not None:
            if not isinstance(data, (bytes, bytearray)):
                return "text packet while binary attachments were due"
            if pending.add_attachment(data):
                del self._binary_packet[eio_sid]
                await self._handle_event(eio_sid, pending.namespace, pending.id, pending.data)
            return None
        if not isinstance(data, str):
            return "binary attachment without a binary packet header"
        event = _default_namespace_event(data)
        if event is not None:
            await self._handle_event(eio_sid, None, *event)
            return None
        pkt = self.packet_class(encoded_packet=data)
        kind = pkt.packet_type
        if kind == sio_packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind == sio_packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.BINARY_EVENT:
            why = self._check_binary_header(eio_sid, pkt)
            if why is not None:
                return why
            self._binary_packet[eio_sid] = pkt
        elif kind in (sio_packet.ACK, sio_packet.BINARY_ACK):
            return "ACK packet: this server never asks a client for one"
        else:
            return f"Socket.IO packet type {kind!r} not allowed from a client"
        return None

    def _check_binary_header(self, eio_sid: str, pkt: Any) -> str | None:
        count = pkt.attachment_count
        if not 1 <= count <= MAX_ATTACHMENTS:
            return f"binary packet announcing {count} attachments (1 to {MAX_ATTACHMENTS})"
        if eio_sid not in self.by_eio_sid or (pkt.namespace or NAMESPACE) != NAMESPACE:
            return "binary packet before the Socket.IO connect"
        why = _event_shape_error(pkt.data)
        if why is not None:
            return why
        try:
            _check_placeholders(pkt.data, count, depth=0)
        except ValueError as exc:
            return str(exc)
        return None

    async def close_all(self) -> None:
        """Server shutdown: close every client without waiting for slow readers.

        Their peers stay for the resume grace (a node that dies loses its
        connections, see protocol.md: Resume), so nobody gets ``peer-left``
        ``left`` and data channels set up through this node keep going."""
        self.shutting_down = True
        for eio_sid in list(self.eio.sockets):
            await socketio_fixes.force_close(self.eio, eio_sid)

    async def drop(self, eio_sid: str, why: str) -> None:
        """Disconnect a client that broke the protocol; no handler runs for it."""
        conn = self.by_eio_sid.get(eio_sid)
        if conn is not None:
            conn.closing = True
        log.warning("dropping client %s: %s", conn.session.peer_id if conn else eio_sid, why)
        eio_socket = self.eio.sockets.get(eio_sid)
        if eio_socket is not None and not getattr(eio_socket, "violation", None):
            eio_socket.violation = why
        self._binary_packet.pop(eio_sid, None)
        await socketio_fixes.force_close(self.eio, eio_sid, abort=True)


def _event_shape_error(data: Any) -> str | None:
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        return "event packet must be a non-empty array starting with a name"
    if data[0] in RESERVED_EVENTS:
        return f"reserved event name {data[0]!r}"
    return None


def _check_placeholders(value: Any, count: int, depth: int) -> None:
    """Every binary placeholder must name an attachment 0..count-1 (an int, not a bool)."""
    if depth > 64:
        raise ValueError("binary packet nested too deeply")
    if isinstance(value, list):
        for item in value:
            _check_placeholders(item, count, depth + 1)
    elif isinstance(value, dict):
        if value.get("_placeholder") and "num" in value:
            num = value["num"]
            if type(num) is not int or not 0 <= num < count:
                raise ValueError(f"binary placeholder num {num!r} is not 0..{count - 1}")
            return
        for item in value.values():
            _check_placeholders(item, count, depth + 1)


def _default_namespace_event(text: str) -> tuple[int | None, Any] | None:
    """``(ack id, data)`` of a text EVENT packet on ``/``, or None for any other packet.

    The common case, decoded without upstream's packet object: ``2``, the
    ack id's digits if any, then the JSON array (Socket.IO v5).
    """
    if text[:1] != "2" or text[1:2] == "/":
        return None
    end, size = 1, len(text)
    while end < size and "0" <= text[end] <= "9":
        end += 1
    if end > MAX_ACK_ID_DIGITS + 1:
        raise ValueError("ack id field is too long")
    ack_id = int(text[1:end]) if end > 1 else None
    return ack_id, orjson.loads(text[end:])


def _event_label(event: str) -> str:
    return event if event in REQUEST_EVENTS else "other"

