"""The aiohttp shell around ``signaling.wire.engineio``: HTTP, websockets, timers.

It owns the I/O the sans-I/O core leaves out: websocket frames are read in
each connection's own handler and handed on as they arrive (no task per
message); frames are written straight to the transport, coalesced per
event-loop turn (``frame_writer``); polling GET/POST bodies are bounded in
size and time; a long POST is worked through in slices that yield to the
loop; and one timer wheel serves every session's ping, connect and
attachment deadlines.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import WebSocketError, WSMsgType, web

from .frame_writer import FrameWriter
from .origins import OriginPolicy
from .settings import Settings
from .timer_wheel import TimerWheel
from .wire import engineio as eio
from .wire.engineio import Action, EngineSession, ProtocolError, Reason, State

log = logging.getLogger("signaling")

DELIBERATE_CLOSE_CODES = frozenset({1000, 1001})
POST_IDLE_TIMEOUT = (1.0, 20.0)
"""A POST body that stalls longer than the ping timeout, clamped to this, is refused (400)."""
POST_DEADLINE = 10.0
"""Seconds a whole POST body may take (408)."""
POST_SLICE = 512
"""Packets of one POST handled before yielding to the event loop."""
READ_CHUNK = 65536


class Handler(Protocol):
    """The layer above (Socket.IO): what a connection's messages and end mean."""

    async def on_message(self, conn: Connection, message: str | bytes) -> None: ...

    def on_close(self, conn: Connection, reason: Reason, lost: bool) -> Awaitable[None] | None: ...

    def next_deadline(self, conn: Connection) -> float | None:
        """A moment (loop time) the handler wants ``on_deadline`` called, if any."""

    def on_deadline(self, conn: Connection, now: float) -> None: ...


_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run ``coro`` on its own, kept referenced until done; a failure is logged."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background work of a session failed", exc_info=task.exception())


class Connection:
    """One Engine.IO session and whichever transport carries it now."""

    __slots__ = (
        "__weakref__",
        "_poller",
        "_posting",
        "_writer",
        "aborted",
        "app_data",
        "close_code",
        "end_reason",
        "ended",
        "engine",
        "handler",
        "lost",
        "server",
        "upgrade_ws",
        "violation",
        "wheel_slot",
        "ws",
        "ws_transport",
    )

    def __init__(self, server: EngineServer, engine: EngineSession) -> None:
        self.server = server
        self.engine = engine
        self.handler = server.handler
        self.ws: web.WebSocketResponse | None = None
        self.ws_transport: asyncio.Transport | None = None
        self._writer: FrameWriter | _QueuedWriter | None = None
        self._poller: asyncio.Future[None] | None = None
        self._posting = False
        self.upgrade_ws: web.WebSocketResponse | None = None
        self.close_code: int | None = None
        self.violation: str | None = None
        self.ended = False
        self.aborted = False
        self.end_reason: Reason | None = None
        self.lost = False
        self.wheel_slot: int | None = None
        self.app_data: Any = None  # the handler's own per-connection state

    @property
    def sid(self) -> str:
        return self.engine.sid

    # -- outbound --------------------------------------------------------
    def write(self, packet: str | bytes) -> None:
        """Send one encoded Engine.IO packet (text with its type, or a binary message)."""
        if self.ended:
            return
        writer = self._writer
        if writer is not None:
            writer.write_packet(packet)
            return
        if not self.engine.queue(packet):
            self._stopped_reading(self.engine.queued_bytes)
            return
        self._wake_poller()

    def write_message(self, encoded: str | list[str | bytes]) -> None:
        """Send one encoded Socket.IO packet (a list when it has attachments)."""
        if isinstance(encoded, str):
            self.write("4" + encoded)
            return
        self.write("4" + encoded[0])  # type: ignore[operator]
        for part in encoded[1:]:
            self.write(part)

    def _stopped_reading(self, waiting: int) -> None:
        log.warning("aborting %s: it stopped reading (%d bytes waiting)", self.sid, waiting)
        self.end(Reason.TRANSPORT_ERROR, abort=True)

    def _wake_poller(self) -> None:
        poller = self._poller
        if poller is not None and not poller.done():
            poller.set_result(None)

    # -- the end ---------------------------------------------------------
    def drop(self, why: str) -> None:
        """End a session that broke the protocol (no handler runs for what it sent)."""
        if self.ended:
            return
        self.violation = why
        log.warning("dropping client %s: %s", self.handler_name(), why)
        self.end(Reason.SERVER_CLOSE, abort=True)

    def handler_name(self) -> str:
        name = getattr(self.app_data, "peer_id", None)
        return name if isinstance(name, str) else self.sid

    def end(self, reason: Reason, *, abort: bool = False) -> asyncio.Task[Any] | None:
        """End the session now; with ``abort`` the transport is dropped unflushed."""
        if self.ended:
            return None
        self.ended = True
        self.aborted = abort
        self.end_reason = reason
        self.lost = self._was_lost(reason)
        self.engine.close()
        server = self.server
        server.wheel.cancel(self)
        if server.sessions.get(self.sid) is self:
            del server.sessions[self.sid]
        writer, self._writer = self._writer, None
        if abort:
            if writer is not None:
                writer.discard()
            for transport in (self.ws_transport, _transport_of(self.upgrade_ws)):
                if transport is not None:
                    transport.abort()
        else:
            if writer is not None and self.ws is not None:
                if reason is Reason.SERVER_CLOSE:
                    writer.write_packet(eio.CLOSE)
                writer.flush()
            if self.ws is not None:
                spawn(self.ws.close())
        self._wake_poller()
        result = self.handler.on_close(self, reason, self.lost)
        return spawn(result) if result is not None else None

    def _was_lost(self, reason: Reason) -> bool:
        """A lost connection keeps its peer for the resume grace; see protocol.md."""
        if self.violation:
            return False
        if self.server.shutting_down:
            return True
        if reason is Reason.TRANSPORT_CLOSE:
            return self.close_code not in DELIBERATE_CLOSE_CODES
        return reason in (Reason.PING_TIMEOUT, Reason.TRANSPORT_ERROR)

    # -- time ------------------------------------------------------------
    def reschedule(self) -> None:
        """Put the session on the wheel for its next moment: ping, pong or handler deadline."""
        if self.ended:
            return
        due = self.engine.next_timer
        other = self.handler.next_deadline(self)
        if other is not None and other < due:
            due = other
        wheel = self.server.wheel
        wheel.schedule(self, max(0.0, due - asyncio.get_running_loop().time()))

    def on_wheel(self) -> None:
        if self.ended:
            return
        now = asyncio.get_running_loop().time()
        self.handler.on_deadline(self, now)
        if self.ended:
            return
        action = self.engine.on_timer(now)
        if action is Action.SEND_PING:
            self.write(eio.PING)
        elif action is Action.CLOSE_PING_TIMEOUT:
            log.info("%s: no pong within %gs, closing", self.sid, self.engine.ping_timeout)
            self.end(Reason.PING_TIMEOUT, abort=True)
            return
        self.reschedule()

    # -- inbound ---------------------------------------------------------
    async def receive(self, packet: eio.Packet) -> bool:
        """Handle one client packet; False once the session has ended."""
        inbound = self.take(packet)
        if inbound is not None:
            await self.act(inbound)
        return not self.ended

    async def act(self, inbound: eio.Inbound) -> None:
        """What a packet means above Engine.IO: a message to hand on, or the client's close."""
        if inbound.message is not None:
            await self.handler.on_message(self, inbound.message)
        elif inbound.closed is not None:
            ending = self.end(inbound.closed)
            if ending is not None:
                await ending

    def take(self, packet: eio.Packet) -> eio.Inbound | None:
        """The Engine.IO part of handling a packet; what is left for ``receive`` (None: nothing)."""
        engine = self.engine
        waited = engine.ping_outstanding
        try:
            inbound = engine.receive(packet, asyncio.get_running_loop().time())
        except ProtocolError as exc:
            self.drop(str(exc))
            return None
        if inbound is eio.NOTHING:
            if waited and not engine.ping_outstanding:
                self.reschedule()  # the pong answered the ping: the next one is due later
            return None
        return inbound


def _transport_of(ws: web.WebSocketResponse | None) -> asyncio.Transport | None:
    if ws is None:
        return None
    req = getattr(ws, "_req", None)
    return None if req is None else req.transport


class _QueuedWriter:
    """Frames through aiohttp's own writer (per-message deflate), from one task."""

    __slots__ = ("_conn", "_queue", "_task", "_ws", "waiting")

    def __init__(self, conn: Connection, ws: web.WebSocketResponse) -> None:
        self._conn = conn
        self._ws = ws
        self._queue: list[str | bytes] = []
        self._task: asyncio.Task[None] | None = None
        self.waiting = 0

    def write_packet(self, packet: str | bytes) -> None:
        self._queue.append(packet)
        self.waiting += len(packet)
        if self.waiting > self._conn.server.max_waiting:
            self._conn._stopped_reading(self.waiting)
            return
        if self._task is None:
            self._task = spawn(self._run())

    async def _run(self) -> None:
        try:
            while self._queue:
                packet = self._queue.pop(0)
                self.waiting -= len(packet)
                if isinstance(packet, str):
                    await self._ws.send_str(packet)
                else:
                    await self._ws.send_bytes(packet)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._task = None

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        self._queue.clear()


class EngineServer:
    """Engine.IO v4 over aiohttp: the endpoint, its sessions and their timers."""

    def __init__(self, settings: Settings, handler: Handler, on_open: Callable[[Connection], None],
                 on_refused: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.handler = handler
        self.on_open = on_open
        self.origins = OriginPolicy(settings.allowed_origins, on_refused)  # counted by the caller
        self.sessions: dict[str, Connection] = {}
        self.wheel = TimerWheel()
        self.shutting_down = False
        self.max_payload = settings.max_http_buffer_size
        self.max_waiting = max(eio.MIN_QUEUED_BYTES, 3 * self.max_payload)
        low, high = POST_IDLE_TIMEOUT
        self.post_idle = min(high, max(low, float(settings.ping_timeout)))

    # -- HTTP entry ------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and not self.origins(origin, request.scheme, request.headers):
            return _bad(f"{origin[:100]} is not an accepted origin", None)
        cors = _cors_headers(request, origin)
        if request.method == "OPTIONS":
            return web.Response(status=200, text="OK", headers=cors)
        query = request.query
        transport = query.get("transport")
        if transport not in ("polling", "websocket"):
            return _bad("transport must be polling or websocket", cors)
        sid = query.get("sid")
        if sid is None:
            if query.get("EIO") != "4":
                return _bad("only Engine.IO version 4 (EIO=4) is spoken here", cors)
            if request.method != "GET":
                return _bad("a new session starts with a GET", cors)
            if transport == "websocket":
                if request.headers.get("Upgrade", "").lower() != "websocket":
                    return _bad("transport=websocket needs a websocket upgrade", cors)
                return await self._open_websocket(request)
            conn = self._open(websocket=False)
            return _ok(self._open_packet(conn), cors)
        conn_or_none = self.sessions.get(sid)
        if conn_or_none is None:
            return _bad("unknown or closed session: start a new one", cors)
        conn = conn_or_none
        if transport == "websocket":
            if request.method != "GET" or request.headers.get("Upgrade", "").lower() != "websocket":
                return _bad("transport=websocket needs a websocket upgrade", cors)
            return await self._upgrade(conn, request)
        if not conn.engine.polling:
            return _bad("this session is on a websocket now", cors)
        if request.method == "GET":
            return await self._poll(conn, request, cors)
        if request.method == "POST":
            return await self._post(conn, request, cors)
        return _bad(f"method {request.method} is not part of Engine.IO", cors)

    def _open(self, *, websocket: bool) -> Connection:
        now = asyncio.get_running_loop().time()
        sid = secrets.token_urlsafe(15)
        settings = self.settings
        engine = EngineSession(sid, websocket=websocket, now=now,
                               ping_interval=settings.ping_interval,
                               ping_timeout=settings.ping_timeout, max_payload=self.max_payload)
        conn = Connection(self, engine)
        self.sessions[sid] = conn
        self.on_open(conn)
        conn.reschedule()
        return conn

    def _open_packet(self, conn: Connection) -> str:
        s = self.settings
        return eio.open_packet(conn.sid, upgrades=not conn.engine.state is State.WEBSOCKET,
                               ping_interval=s.ping_interval, ping_timeout=s.ping_timeout,
                               max_payload=self.max_payload)

    # -- polling ---------------------------------------------------------
    async def _poll(self, conn: Connection, request: web.Request,
                    cors: dict[str, str]) -> web.StreamResponse:
        if conn._poller is not None:
            # The pending one answers the close packet; this one, and any after, 400.
            conn.violation = "a second long-poll GET while one is pending"
            log.warning("dropping client %s: %s", conn.handler_name(), conn.violation)
            conn.end(Reason.SERVER_CLOSE)
            return _bad("overlapping long-poll GET", cors)
        limit = None if _takes_any_payload(request) else eio.PACKETS_PER_POLL
        packets = conn.engine.take(limit)
        if not packets and not conn.ended:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            conn._poller = waiter
            try:
                await waiter
            finally:
                conn._poller = None
            packets = conn.engine.take(limit)
        if conn.ended:
            # The server's close is said; the client's own is answered with a NOOP.
            packets.append(eio.NOOP if conn.end_reason is Reason.CLIENT_CLOSE else eio.CLOSE)
        elif not packets:
            packets = [eio.NOOP]  # the session moved to a websocket
        return _ok(eio.encode_payload(packets), cors)

    async def _post(self, conn: Connection, request: web.Request,
                    cors: dict[str, str]) -> web.StreamResponse:
        length = request.content_length
        if length is None:
            return web.Response(status=411, text="polling POST needs a Content-Length", headers=cors)
        if length > self.max_payload:
            conn.drop(f"polling POST of {length} bytes, over {self.max_payload}")
            return web.Response(status=413, text=f"payload over {self.max_payload} bytes", headers=cors)
        if conn._posting:
            conn.drop("a second POST while one is being read")
            return _bad("overlapping POST", cors)
        conn._posting = True
        try:
            body, status = await self._read_body(conn, request, length)
            if body is None:
                return _bad("POST body not read", cors, status=status)
            await self._take_payload(conn, body)
        finally:
            conn._posting = False
        if conn.violation is not None:
            return _bad(conn.violation, cors)
        return web.Response(status=200, text="ok", headers=cors, content_type="text/plain")

    async def _read_body(self, conn: Connection, request: web.Request,
                         length: int) -> tuple[bytes | None, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POST_DEADLINE
        content = request.content
        first = content.read_nowait(length) if length else b""  # usually all there already
        chunks: list[bytes] = [first] if first else []
        remaining = length - len(first)
        while remaining > 0:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(
                    content.read(min(remaining, READ_CHUNK)), min(self.post_idle, left))
            except TimeoutError:
                if loop.time() >= deadline - 0.001:
                    conn.drop(f"polling POST body not complete within {POST_DEADLINE:g} s")
                    return None, 408
                conn.drop(f"polling POST body stalled for {self.post_idle:g} s")
                return None, 400
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a reset mid-body: the client is gone
                log.info("%s: polling POST cut off (%s)", conn.sid, type(exc).__name__)
                conn.end(Reason.TRANSPORT_ERROR, abort=True)
                return None, 400
            if not chunk:
                conn.drop("polling POST body ended early")
                return None, 400
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), 200

    async def _take_payload(self, conn: Connection, raw: bytes) -> None:
        """Each packet in order, in slices of ``POST_SLICE`` that yield to the loop."""
        try:
            parts = eio.split_payload(raw.decode("utf-8")) if raw else []
        except UnicodeDecodeError:
            conn.drop("polling POST body is not UTF-8")
            return
        take, decode = conn.take, eio.decode_part
        for start in range(0, len(parts), POST_SLICE):
            if start:
                await asyncio.sleep(0)  # let other clients' work run
            for part in parts[start:start + POST_SLICE]:
                if conn.ended:
                    return
                try:
                    packet = decode(part)
                except ProtocolError as exc:
                    conn.drop(str(exc))
                    return
                inbound = take(packet)
                if inbound is not None:  # None: a pong, nothing for the layer above
                    await conn.act(inbound)

    # -- websocket -------------------------------------------------------
    def _websocket(self) -> web.WebSocketResponse:
        return web.WebSocketResponse(max_msg_size=self.max_payload,
                                     compress=self.settings.websocket_compression, autoping=True)

    async def _open_websocket(self, request: web.Request) -> web.StreamResponse:
        ws = self._websocket()
        await ws.prepare(request)
        conn = self._open(websocket=True)
        self._attach(conn, ws, request)
        conn.write(self._open_packet(conn))
        await self._read_websocket(conn, ws)
        return ws

    def _attach(self, conn: Connection, ws: web.WebSocketResponse, request: web.Request) -> None:
        conn.ws = ws
        transport = request.transport
        conn.ws_transport = transport
        if ws.compress or transport is None:
            conn._writer = _QueuedWriter(conn, ws)  # deflate is aiohttp's: frames through it
        else:
            conn._writer = FrameWriter(transport, self.max_waiting, conn._stopped_reading)

    async def _upgrade(self, conn: Connection, request: web.Request) -> web.StreamResponse:
        engine = conn.engine
        if engine.state is not State.POLLING:
            return _bad(f"cannot upgrade a session that is {engine.state.value}", None)
        ws = self._websocket()
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        engine.probe_opened(loop.time())
        conn.upgrade_ws = ws
        try:
            while True:
                left = engine.upgrade_deadline - loop.time()
                try:
                    msg = await asyncio.wait_for(ws.receive(), max(0.0, left))
                except TimeoutError:
                    log.info("%s: websocket upgrade stalled, staying on polling", conn.sid)
                    msg = None
                if conn.ended:
                    return ws
                if msg is None or msg.type is not WSMsgType.TEXT:
                    engine.probe_failed()
                    _abort(ws)
                    return ws
                try:
                    done = engine.probe_frame(msg.data)
                except ProtocolError as exc:
                    log.info("%s: upgrade failed (%s), staying on polling", conn.sid, exc)
                    _abort(ws)
                    return ws
                if done:
                    break
                await ws.send_str(eio.PONG + "probe")
                conn._wake_poller()  # a NOOP is queued: the pending poll ends
        finally:
            conn.upgrade_ws = None
        self._attach(conn, ws, request)
        for packet in engine.take(None):
            conn.write(packet)
        conn._wake_poller()
        await self._read_websocket(conn, ws)
        return ws

    async def _read_websocket(self, conn: Connection, ws: web.WebSocketResponse) -> None:
        receive = ws.receive
        on_message = conn.handler.on_message
        reason = Reason.TRANSPORT_CLOSE
        try:
            while not conn.ended:
                msg = await receive()
                kind = msg.type
                if kind is WSMsgType.TEXT:
                    data: str = msg.data
                    if data[:1] == "4":
                        await on_message(conn, data[1:])
                        continue
                    try:
                        packet = eio.decode_frame(data)
                    except ProtocolError as exc:
                        conn.drop(str(exc))
                        break
                    if not await conn.receive(packet):
                        break
                elif kind is WSMsgType.BINARY:
                    await on_message(conn, msg.data)
                else:
                    if kind is WSMsgType.CLOSE:
                        # Only a close frame the client sent carries its intent;
                        # aiohttp reports a bare TCP end as 1000 too.
                        conn.close_code = msg.data
                    elif kind is WSMsgType.ERROR and isinstance(msg.data, WebSocketError):
                        conn.violation = f"websocket protocol error {msg.data.code}: {msg.data}"
                        log.warning("dropping client %s: %s", conn.handler_name(), conn.violation)
                        reason = Reason.SERVER_CLOSE
                    break
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            if not conn.ended:
                conn.end(reason)
            if not ws.closed:
                await ws.close()

    # -- shutdown --------------------------------------------------------
    async def close_all(self) -> None:
        """Close every session without waiting for slow readers; their peers stay lost."""
        self.shutting_down = True
        ends = [conn.end(Reason.SERVER_CLOSE) for conn in list(self.sessions.values())]
        tasks = [t for t in ends if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)


UNCAPPED_AGENTS = ("Mozilla/", "node-XMLHttpRequest")
"""User-Agents of clients known to take any number of packets in one poll answer:
browsers and Node's engine.io-client. Any other client (python-engineio refuses more
than 16 and drops the session) gets at most ``PACKETS_PER_POLL``."""


def _takes_any_payload(request: web.Request) -> bool:
    return request.headers.get("User-Agent", "").startswith(UNCAPPED_AGENTS)


def _abort(ws: web.WebSocketResponse) -> None:
    transport = _transport_of(ws)
    if transport is not None:
        transport.abort()


def _cors_headers(request: web.Request, origin: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = "OPTIONS, GET, POST"
        wanted = request.headers.get("Access-Control-Request-Headers")
        if wanted:
            headers["Access-Control-Allow-Headers"] = wanted
    return headers


def _ok(body: str, cors: dict[str, str]) -> web.Response:
    return web.Response(status=200, body=body.encode(), headers={
        **cors, "Content-Type": "text/plain; charset=UTF-8"})


def _bad(message: str, cors: dict[str, str] | None, status: int = 400) -> web.Response:
    return web.Response(status=status, text=message, headers=cors or {}, content_type="text/plain")
