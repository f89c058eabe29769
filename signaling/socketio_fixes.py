"""Corrections to python-engineio 4.15.1 internals, in one place.

python-engineio is pinned exactly (pyproject.toml) because each correction
below replaces a piece of its behaviour; each names the upstream behaviour it
corrects and the test that fails without it (``tests/signaling`` and
``tests/security``).

- ``HardenedSocket.handle_post_request``: upstream reads a polling POST with
  one ``read(Content-Length)``, which on aiohttp returns only the bytes that
  have arrived so far (a large POST is decoded truncated), refuses payloads
  of more than 16 packets, which the official JS client sends when it
  batches (the messages would be lost), waits for a stalled body forever
  (slowloris: the request and its task live until the client goes away) and
  only logs a packet that does not decode. We read the whole declared body,
  with an idle timeout, accept any number of packets that fit in it, and
  close the session on a packet that does not decode (or a reset mid-body,
  quietly: upstream logs a traceback).
  Tests: tests/signaling/test_requests.py (batches, binary over polling);
  tests/security/test_transport.py test_b03_polling_batches,
  test_b04_slowloris_post, test_b16_resets_mid_request;
  tests/security/test_protocol.py test_bad_packets_over_polling.
- ``HardenedSocket.poll``: upstream answers a long-poll with everything
  queued, but python-engineio's own client refuses a payload of more than
  16 packets (and drops the session); we answer with at most 16 and leave
  the rest for the next poll. Test: tests/signaling/test_requests.py
  test_order_of_signals_and_relays_from_one_sender[polling].
- ``HardenedSocket.send``: upstream's outbound queue is an unbounded
  ``asyncio.Queue`` (+1.5 GB in 15 s behind a client that stopped reading).
  Ours is bounded in messages and bytes; past either bound the transport is
  aborted (not drained: a graceful close waits for a drain that never comes)
  and the session ends as lost (transport error).
  Test: tests/security/test_faults.py test_f10_stalled_reader_is_dropped_and_nobody_else_slows.
- ``HardenedSocket.close``: upstream's ``close(wait=True)`` (used by
  ``AsyncServer.disconnect`` and by its POST error path) waits for the
  outbound queue to drain, which never happens behind a client that stopped
  reading, so the request or task hangs; we never wait. Upstream also
  leaves a pending long-poll GET waiting until the ping timeout after the
  client's Engine.IO close; we wake it.
  Tests: tests/security/test_transport.py test_b02_oversized_polling_post, test_b04_slowloris_post.
- ``HardenedSocket.schedule_ping`` / ``check_ping_timeout``: upstream enforces
  a ping deadline only when its service task comes round (every ping
  timeout), so a silent client is noticed up to interval + 2 x timeout after
  its last pong, and it leaves the dead TCP connection open; we check each
  ping's deadline on time (on one timer wheel for all sessions, instead of
  upstream's sleeping task per connection), let a pong that is already
  waiting be read first (a stalled event loop is not a silent client), and
  abort the transport.
  Tests: tests/security/test_faults.py test_f5_silent_client_times_out,
  test_f11_event_loop_stall_under_ping_timeout.
- ``HardenedSocket._websocket_handler``: upstream reads each websocket frame
  through a new task, hands each message to its handler through another
  wrapper, and writes every outbound packet through a queue, a writer task
  and one ``send`` system call. We read in the session's own task, call the
  Socket.IO dispatcher directly, and (without compression) write frames
  straight to the transport, coalesced per loop turn (``frame_writer``):
  ~2x the relay throughput per CPU-second. Tests: every websocket test, the
  official client's in tests/interop; tests/signaling/unit/test_frame_writer.py.
- ``WebSocket`` (the aiohttp wrapper): upstream leaves per-message deflate on
  whenever the client offers it (~90 KB per idle connection, and inflate
  work an attacker controls); ours makes deflate a setting. Upstream forgets
  the close code, and aiohttp reports a TCP end without a close frame (a
  killed client) as code 1000, the same as a deliberate close; ours keeps
  the code of a close frame actually received, and None otherwise, which
  tells a deliberate close (1000, 1001) from a lost connection.
  Tests: tests/signaling/test_resume.py
  test_killed_client_resumes_with_everything_in_order[websocket] (a SIGKILLed
  client is lost, not gone), test_close_codes_tell_deliberate_from_lost;
  tests/security/test_transport.py test_b13_* (deflate).
- ``WebSocket.wait``: in upstream's websocket loop an Engine.IO packet that
  does not decode (``x``, ``b`` + bad base64, ``4[[[[...`` raising
  RecursionError) raises outside any handler and kills the loop, and the
  session lingers until the ping timeout; we decode each frame once in a
  guard and close the session at once when it does not decode. Upstream's
  ``receive`` also raises IndexError for a packet type past 6 and only logs
  other types a client may not send; we close the session.
  Tests: tests/security/test_protocol.py test_b18_undecodable_engineio_packet.
- ``WebSocket._wait_upgrade``: upstream sends nothing through polling from
  the moment an upgrade websocket opens until its ``5``, without a time
  limit; a stalled probe wedged the session. Ours gives up the probe after
  ``UPGRADE_TIMEOUT`` (or when it ends) and polling carries on.
  Test: reliability F7 (test_f7_upgrade_failing.py, ``swallow``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.async_socket
from aiohttp import WebSocketError, WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from .frame_writer import FrameWriter
from .timer_wheel import TimerWheel

log = logging.getLogger("signaling")

DELIBERATE_CLOSE_CODES = frozenset({1000, 1001})
CLIENT_PACKET_TYPES = frozenset({eio_packet.PONG, eio_packet.MESSAGE, eio_packet.UPGRADE, eio_packet.CLOSE})
PACKETS_PER_POLL = 16  # python-engineio clients refuse more in one payload
MAX_QUEUED_MESSAGES = 2000
"""Outbound packets a session may have waiting before it is aborted."""
MIN_QUEUED_BYTES = 8 * 1024 * 1024
"""Outbound bytes a session may have waiting: this, or 3 maximal payloads if more."""
PING_CHECK_SLACK = 0.1
"""Seconds given to a pong already received before a ping deadline is enforced."""
UPGRADE_TIMEOUT = 10.0
"""Seconds a websocket upgrade probe may stall before the session goes back to polling."""
POST_IDLE_TIMEOUT = (1.0, 20.0)
"""A polling POST body that stalls longer than the ping timeout, clamped to this, is aborted."""

# Called (eio_sid, reason) when a session is closed for breaking the protocol.
ViolationHook = Callable[[str, str], Awaitable[None]]


class SessionEnded(eio_exceptions.SocketIsClosedError):  # type: ignore[misc]
    """The session was closed while handling a request.

    A ``SocketIsClosedError`` so that upstream's websocket loop ends quietly
    and its POST handler answers 400 instead of logging a traceback.
    """


class ProtocolViolation(SessionEnded):
    """The client sent something Engine.IO does not allow; its session is closed."""


def _packet_size(pkt: Any) -> int:
    data = getattr(pkt, "data", None)
    if isinstance(data, (str, bytes, bytearray)):
        return len(data) + 1
    return 64


_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Any) -> None:
    """Run ``coro`` on its own, kept referenced until done; its failure is logged
    (a session that closed meanwhile is not an error)."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, eio_exceptions.SocketIsClosedError):
        log.error("background work of a session failed", exc_info=exc)


class _NoQueue:
    """The outbound queue of a session that writes frames directly: it holds nothing.

    Upstream's ``asyncio.Queue`` (four deques and an event, ~3.3 KB) is
    dropped when a session starts writing frames directly; the end markers
    other paths still put are not needed there (closing the websocket ends it).
    """

    def put_nowait(self, item: Any) -> None:
        pass

    async def put(self, item: Any) -> None:
        pass

    def get_nowait(self) -> Any:
        raise asyncio.QueueEmpty

    async def get(self) -> Any:
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        pass

    async def join(self) -> None:
        pass

    def empty(self) -> bool:
        return True


NO_QUEUE = _NoQueue()


class HardenedSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket with the corrections above (set on connect)."""

    connected: bool  # upstream's state flags, set in its __init__
    upgrading: bool
    upgraded: bool
    closing: bool
    closed: bool
    last_ping: float | None
    queue: Any  # upstream's asyncio.Queue, or NO_QUEUE once frames are written directly
    ws_close_code: int | None = None
    queued_bytes: int = 0
    queued_messages: int = 0
    aborted: bool = False
    violation: str | None = None
    websocket: WebSocket | None = None
    _in_post: bool = False
    _frames: FrameWriter | None = None  # set while frames are written directly
    wheel_slot: int | None = None  # kept by the server's ping wheel
    connect_deadline: asyncio.TimerHandle | None = None  # until the Socket.IO connect

    # -- outbound --------------------------------------------------------
    def _max_waiting_bytes(self) -> int:
        return max(MIN_QUEUED_BYTES, 3 * int(self.server.max_http_buffer_size))

    def write_message(self, data: str | bytes) -> bool:
        """Send a MESSAGE packet straight onto the websocket; False if it must be queued.

        Once a session is on an uncompressed websocket, there is nothing to
        wait for: a frame goes to the transport at the end of this loop turn
        (no packet object, no queue, no writer task to wake), and the bound
        on what waits for a slow reader is the transport's buffer.
        """
        frames = self._frames
        if frames is None:
            return False
        frames.write_packet("4" + data if isinstance(data, str) else data)
        return True

    def _overflowed(self, waiting: int) -> None:
        log.warning("aborting %s: it stopped reading (%d bytes waiting)", self.sid, waiting)
        spawn(self.abort(self.server.reason.TRANSPORT_ERROR))

    async def send(self, pkt: Any) -> None:
        if self.aborted:
            return
        if self._frames is not None:
            self._frames.write_packet(pkt.encode())
            return
        if not await self.check_ping_timeout():
            return
        size = _packet_size(pkt)
        if (
            self.queued_messages + 1 > MAX_QUEUED_MESSAGES
            or self.queued_bytes + size > self._max_waiting_bytes()
        ):
            log.warning(
                "aborting %s: it stopped reading (%d packets, %d bytes waiting)",
                self.sid, self.queued_messages, self.queued_bytes,
            )
            await self.abort(self.server.reason.TRANSPORT_ERROR)
            return
        self.queued_messages += 1
        self.queued_bytes += size
        self.queue.put_nowait(pkt)

    def _take_nowait(self) -> Any:
        """The next queued packet, accounted for (None: the end marker); raises QueueEmpty."""
        pkt = self.queue.get_nowait()
        self.queue.task_done()
        self._took(pkt)
        return pkt

    def _took(self, pkt: Any) -> None:
        if pkt is None:
            return
        self.queued_messages = max(0, self.queued_messages - 1)
        self.queued_bytes = max(0, self.queued_bytes - _packet_size(pkt))

    async def abort(self, reason: Any, *, unregister: bool = True) -> None:
        """End the session now: abort its transport, drop what is queued."""
        if self.aborted:
            return
        self.aborted = True
        if self._frames is not None:
            self._frames.discard()
            self._frames = None
        if unregister and self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]
        if self.websocket is not None:
            self.websocket.abort()
        while True:
            try:
                self.queue.get_nowait()
                self.queue.task_done()
            except asyncio.QueueEmpty:
                break
        self.queued_messages = self.queued_bytes = 0
        await self.close(wait=False, abort=True, reason=reason)
        self.queue.put_nowait(None)  # ends the websocket writer / long-poll

    async def poll(self) -> list[Any]:
        try:
            if self.upgraded:
                # The websocket writer: the ping deadline ends a silent session,
                # so no timer (and no wait_for task) per idle connection.
                first = await self.queue.get()
            else:
                first = await asyncio.wait_for(
                    self.queue.get(), self.server.ping_interval + self.server.ping_timeout
                )
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise eio_exceptions.QueueEmpty() from None
        if first is None:
            return []
        self._took(first)
        packets = [first]
        limit = PACKETS_PER_POLL if not self.upgraded else None
        while limit is None or len(packets) < limit:
            try:
                pkt = self._take_nowait()
            except asyncio.QueueEmpty:
                break
            if pkt is None:
                self.queue.put_nowait(None)  # keep the end marker for the next poll
                break
            packets.append(pkt)
        return packets

    # -- inbound ---------------------------------------------------------
    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        try:
            length = int(environ.get("CONTENT_LENGTH", "0"))
        except ValueError:
            raise eio_exceptions.ContentTooLongError() from None
        if length < 0 or length > self.server.max_http_buffer_size:
            raise eio_exceptions.ContentTooLongError()
        self._in_post = True
        try:
            await self._handle_body(environ, length)
        finally:
            self._in_post = False

    async def _handle_body(self, environ: dict[str, Any], length: int) -> None:
        raw = await self._read_body(environ["wsgi.input"], length)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise await self._violated("polling POST body is not UTF-8") from None
        if not body:
            return
        for encoded in body.split("\x1e"):
            if self.closed or self.aborted:
                return
            try:
                pkt = eio_packet.Packet(encoded_packet=encoded)
            except Exception as exc:  # noqa: BLE001 - any decode failure is the client's
                raise await self._violated(
                    f"undecodable Engine.IO packet ({type(exc).__name__})"
                ) from None
            await self.receive(pkt)

    async def _read_body(self, stream: Any, length: int) -> bytes:
        low, high = POST_IDLE_TIMEOUT
        idle = min(high, max(low, float(self.server.ping_timeout)))
        chunks: list[bytes] = []
        remaining = length
        while remaining > 0:
            try:
                chunk = await asyncio.wait_for(stream.read(min(remaining, 65536)), idle)
            except TimeoutError:
                raise await self._violated(f"polling POST body stalled for {idle:g} s") from None
            except (ConnectionError, OSError) as exc:
                # Reset mid-POST: a lost client, not a server error to log.
                log.info("%s: polling POST cut off (%s)", self.sid, type(exc).__name__)
                await self.abort(self.server.reason.TRANSPORT_ERROR, unregister=False)
                raise SessionEnded("polling POST cut off") from None
            if not chunk:
                raise await self._violated("polling POST body ended early")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    async def _violated(self, why: str) -> ProtocolViolation:
        self.violation = why
        log.warning("dropping client %s: %s", self.sid, why)
        # In a POST, upstream's error path removes the session and answers
        # 400 only while the session is still registered.
        await self.abort(self.server.reason.SERVER_DISCONNECT, unregister=not self._in_post)
        return ProtocolViolation(why)

    async def receive(self, pkt: Any) -> None:
        # Upstream raises IndexError (logging the packet's name) for a type
        # past 6, and only logs the others it does not expect.
        if pkt.packet_type not in CLIENT_PACKET_TYPES:
            raise await self._violated(
                f"Engine.IO packet type {pkt.packet_type!r} not allowed from a client"
            )
        await super().receive(pkt)

    def schedule_ping(self) -> None:
        # On the server's timer wheel rather than upstream's task sleeping
        # through each ping interval: an idle connection holds no task or
        # timer of its own.
        if self.last_ping:
            self.last_ping = None
            self.server.ping_wheel.schedule(self, self.server.ping_interval)

    def on_wheel(self) -> None:
        """The next ping is due, or (a ping outstanding) its deadline passed."""
        if self.closing or self.closed:
            return
        if self.last_ping is None:
            self.last_ping = time.time()
            ping = eio_packet.Packet(eio_packet.PING)
            if self._frames is not None:
                self._frames.write_packet(ping.encode())
            else:
                spawn(self.send(ping))
            # Check this ping's deadline on time, rather than when upstream's
            # service task next comes round (up to another ping timeout later).
            self.server.ping_wheel.schedule(self, self.server.ping_timeout + PING_CHECK_SLACK)
        else:
            spawn(self.check_ping_timeout())

    async def check_ping_timeout(self) -> bool:
        if self.closed:
            raise eio_exceptions.SocketIsClosedError()
        last_ping = self.last_ping
        if not last_ping or time.time() - last_ping <= self.server.ping_timeout:
            return True
        # The deadline passed, maybe while this process was stalled: let a
        # pong already waiting in the socket be read before deciding.
        await asyncio.sleep(PING_CHECK_SLACK)
        if self.closed:
            # Closed meanwhile: not an error (upstream's service task, which
            # also calls this, would log it with a traceback).
            return False
        if self.last_ping is not last_ping:
            return True
        log.info("%s: no pong within %gs, closing", self.sid, self.server.ping_timeout)
        await self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT)
        if self.websocket is not None:
            self.websocket.abort()
        return False

    async def _websocket_handler(self, ws: WebSocket) -> None:
        """Run a websocket session: the upgrade probe if any, then read and write.

        Upstream reads each frame through a new task and a ``wait_for`` with
        the ping deadline (two tasks per message: ~11 % of the server's CPU
        in the relay benchmark), and writes through a queue and a writer
        task. We await the socket directly (a silent client is caught by the
        ping deadline above, which aborts the socket), hand a Socket.IO
        message straight to its handler, and, without compression, write
        frames straight to the transport (``write_message``).
        """
        if self.connected and not await self._probe_upgrade(ws):
            return
        if not self.connected:
            self.connected = True
            self.upgraded = True
        writer = None
        transport = ws.transport
        if ws.compress or transport is None:
            writer = asyncio.create_task(self._write_websocket(ws), name=f"eio-writer-{self.sid}")
        else:
            self._write_directly(transport)
        on_message = self.server.handlers.get("message")
        try:
            while not self.closed:
                try:
                    data = await ws.wait()
                except OSError:
                    break
                try:
                    if on_message is not None and (isinstance(data, bytes) or data[:1] == "4"):
                        await on_message(self.sid, data if isinstance(data, bytes) else data[1:])
                    else:
                        await self.receive(eio_packet.Packet(encoded_packet=data))
                except eio_exceptions.SocketIsClosedError:
                    break
                except eio_exceptions.UnknownPacketError:
                    continue
                except Exception:
                    log.exception("%s: handling a message failed", self.sid)
        finally:
            if self._frames is not None:
                self._frames.flush()
                self._frames = None
            if writer is not None:
                self.queue.put_nowait(None)  # lets the writer finish
                await writer
            else:
                await ws.close()
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    def _write_directly(self, transport: asyncio.Transport) -> None:
        """From now on write frames directly, starting with what was queued meanwhile."""
        frames = FrameWriter(transport, self._max_waiting_bytes(), self._overflowed)
        while True:
            try:
                pkt = self._take_nowait()
            except asyncio.QueueEmpty:
                break
            if pkt is None:
                return  # the session ended meanwhile
            frames.write_packet(pkt.encode())
        frames.flush()
        if not self.closed and not self.aborted:
            self._frames = frames
            self.queue = NO_QUEUE

    async def _probe_upgrade(self, ws: WebSocket) -> bool:
        """Engine.IO's upgrade: ``2probe`` / ``3probe``, then ``5``; False if it fails."""
        self.upgrading = True
        try:
            probe = eio_packet.Packet(encoded_packet=await ws.wait())
            if probe.packet_type != eio_packet.PING or probe.data != "probe":
                return False
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            self.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            done = eio_packet.Packet(encoded_packet=await ws.wait())
            if done.packet_type != eio_packet.UPGRADE:
                return False
        except OSError:
            return False
        finally:
            self.upgrading = False
        self.upgraded = True
        return True

    async def _write_websocket(self, ws: WebSocket) -> None:
        while True:
            try:
                packets = await self.poll()
            except eio_exceptions.QueueEmpty:
                break
            if not packets:
                break
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except (OSError, ConnectionError, RuntimeError):
                break
        await ws.close()

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        was_open = not self.closed and not self.closing
        self.server.ping_wheel.cancel(self)
        await super().close(wait=False, abort=abort, reason=reason)
        if was_open and not self.upgraded:
            # Wake a long-poll GET that would otherwise hang until ping timeout.
            self.queue.put_nowait(None)
        frames = self._frames
        if frames is not None and self.websocket is not None:
            # Frames were written directly: no writer task will close the
            # websocket, so close it now (this also ends the read loop).
            frames.flush()
            self._frames = None
            spawn(self.websocket.close())



class WebSocket:
    """aiohttp websocket for python-engineio: deflate optional, real close code, guarded decode."""

    compress = False

    def __init__(self, handler: Any, server: Any) -> None:
        self.handler = handler
        self.server = server
        self._sock: web.WebSocketResponse | None = None
        self._request: web.Request | None = None
        owner = getattr(handler, "__self__", None)
        self.owner: HardenedSocket | None = owner if isinstance(owner, HardenedSocket) else None
        if self.owner is not None:
            self.owner.websocket = self

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._request = request
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size,
            compress=self.compress,
            autoping=True,
        )
        await self._sock.prepare(request)
        # Nothing reads the request's environ from here on, but upstream's
        # frames hold it for the life of the websocket: ~1.5 KB of headers.
        environ.clear()
        await self.handler(self)
        return self._sock

    @property
    def transport(self) -> asyncio.Transport | None:
        """The connection's transport, for frames written directly (None once it ended)."""
        if self._request is None or self._sock is None:
            return None
        transport = self._request.transport
        return None if transport is None or transport.is_closing() else transport

    def abort(self) -> None:
        """Drop the TCP connection at once, whatever is still buffered."""
        if self._request is not None and self._request.transport is not None:
            self._request.transport.abort()

    async def close(self) -> None:
        if self._sock is not None:
            await self._sock.close()

    async def send(self, message: str | bytes) -> None:
        if self._sock is None:
            raise OSError("websocket not open")
        if isinstance(message, bytes):
            await self._sock.send_bytes(message)
        else:
            await self._sock.send_str(message)

    async def wait(self) -> str | bytes:
        if self._sock is None:
            raise OSError("websocket not open")
        owner = self.owner
        if owner is not None and owner.upgrading and not owner.upgraded:
            return await self._wait_upgrade(owner)
        msg = await self._sock.receive()
        return await self._received(msg)

    async def _wait_upgrade(self, owner: HardenedSocket) -> str | bytes:
        """A frame of an upgrade probe, within ``UPGRADE_TIMEOUT``.

        Upstream holds every packet of a polling session from the moment a
        websocket with its sid opens until ``5`` arrives, with no time limit,
        and on some ends of the probe never lets go: a client whose probe
        stalls (a proxy that passes the handshake and eats the frames) never
        gets another packet. A probe that stalls or ends gives the packets
        back to polling, in order, as engine.io's ``upgradeTimeout`` does.
        """
        assert self._sock is not None
        try:
            msg = await asyncio.wait_for(self._sock.receive(), UPGRADE_TIMEOUT)
        except TimeoutError:
            msg = None
        if msg is None or msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            owner.upgrading = False
            if owner.websocket is self:
                owner.websocket = None
            self.abort()
            if msg is None:
                log.info("%s: websocket upgrade stalled, staying on polling", owner.sid)
                raise OSError("websocket upgrade timed out")
        return await self._received(msg)

    async def _received(self, msg: Any) -> str | bytes:
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            data: str | bytes = msg.data
            await self._guard(data)
            return data
        if msg.type is WSMsgType.CLOSE and self.owner is not None:
            # Only a close frame the client sent carries its intent; aiohttp
            # also reports 1000 for a TCP end without one (EofStream).
            self.owner.ws_close_code = msg.data
        elif (
            msg.type is WSMsgType.ERROR
            and isinstance(msg.data, WebSocketError)
            and self.owner is not None
        ):
            # aiohttp already closed with 1002/1007/1009: a broken protocol,
            # not a lost connection.
            self.owner.violation = f"websocket protocol error {msg.data.code}: {msg.data}"
            log.warning("dropping client %s: %s", self.owner.sid, self.owner.violation)
        raise OSError(f"websocket ended ({msg.type.name})")

    async def _guard(self, data: str | bytes) -> None:
        """Close the session when ``data`` is not a valid Engine.IO packet."""
        if isinstance(data, bytes) or self.owner is None:
            return
        if data[:1] == "4" and data[1:2].isdigit():
            return  # a Socket.IO packet: Engine.IO keeps it as text, nothing to decode
        try:
            eio_packet.Packet(encoded_packet=data)
        except Exception as exc:  # noqa: BLE001 - RecursionError, ValueError, binascii.Error...
            await self.owner._violated(f"undecodable Engine.IO packet ({type(exc).__name__})")
            raise OSError("undecodable Engine.IO packet") from None


def install(eio_server: Any, *, websocket_compression: bool) -> None:
    """Make ``eio_server`` use the corrected websocket wrapper."""
    websocket = type("ConfiguredWebSocket", (WebSocket,), {"compress": websocket_compression})
    eio_server._async = {**eio_server._async, "websocket": websocket}
    eio_server.ping_wheel = TimerWheel()


def adopt(eio_socket: Any) -> None:
    """Give a freshly created Engine.IO socket the corrected behaviour.

    python-engineio builds its socket class inline in ``_handle_connect``
    with no factory to override, so we swap the class of the new instance in
    the connect hook, before it handles any request.
    """
    if type(eio_socket) is engineio.async_socket.AsyncSocket:
        eio_socket.__class__ = HardenedSocket


async def force_close(eio_server: Any, eio_sid: str, *, abort: bool = False) -> None:
    """Close a session now, without waiting for its outbound queue to drain.

    Upstream's ``disconnect`` waits for the queue to empty, which never
    happens behind a client that stopped reading. With ``abort`` the
    transport is dropped at once (nothing more is sent); without it the
    client gets an Engine.IO close packet if it still reads.
    """
    eio_socket = eio_server.sockets.pop(eio_sid, None)
    if eio_socket is None:
        return
    if abort and isinstance(eio_socket, HardenedSocket):
        await eio_socket.abort(eio_server.reason.SERVER_DISCONNECT)
        return
    await eio_socket.close(wait=False, abort=False, reason=eio_server.reason.SERVER_DISCONNECT)
    eio_socket.queue.put_nowait(None)
