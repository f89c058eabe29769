"""The doctor's own small Socket.IO client, on aiohttp and the ``signaling.wire`` codecs.

Just what ``python -m signaling doctor`` needs to see a server as a client
does: the Engine.IO handshake over polling (long-poll GET, POST of
``\\x1e``-separated payloads) or straight over a websocket, the upgrade from
polling to websocket (``2probe`` / ``3probe`` / ``5``), the Socket.IO
CONNECT to ``/`` with an ``auth`` payload, events with acks, answers to the
server's pings and a clean close. No reconnection, no binary events, no
namespaces other than ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from .wire import engineio as eio
from .wire import socketio as sio

POLLING, WEBSOCKET = "polling", "websocket"
SLACK = 5.0
"""Seconds past the server's ping interval + timeout a long-poll may stay silent."""


class ClientError(Exception):
    """The connection could not be made or was lost; the message says where."""


Handler = Callable[[Any], None]


def endpoint(url: str, websocket: bool, sid: str | None = None) -> str:
    """The Engine.IO URL under ``/socket.io/`` of a server's base URL."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if websocket:
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    query = {"EIO": "4", "transport": WEBSOCKET if websocket else POLLING}
    if sid is not None:
        query["sid"] = sid
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/socket.io/", urlencode(query), ""))


def connect_error_text(data: Any) -> str:
    """A CONNECT_ERROR's data as one line: ``code: message`` when the server gave a code."""
    if isinstance(data, dict):
        message = str(data.get("message", data))
        detail = data.get("data")
        code = detail.get("code") if isinstance(detail, dict) else None
        return f"{code}: {message}" if isinstance(code, str) else message
    return str(data)


def _text_event(event: str, data: Any, ack_id: int | None = None) -> str:
    packet = sio.encode_event([event, data], binary=False, ack_id=ack_id)
    assert isinstance(packet, str)  # binary=False: always one text packet
    return packet


class SocketIOClient:
    """One connection to ``/``. ``connect``, then ``call`` / ``emit`` / ``on``, then ``disconnect``."""

    def __init__(self, url: str, *, verify_ssl: bool = True) -> None:
        self.url = url
        self.verify_ssl = verify_ssl
        self.sid = ""
        self.transport = ""
        self.connected = False
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._handshake: eio.Handshake | None = None
        self._reader: asyncio.Task[None] | None = None
        self._post_lock = asyncio.Lock()
        self._connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._next_ack = 0
        self._handlers: dict[str, Handler] = {}
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.pinged = asyncio.Event()
        """Set on each ping from the server (answered with a pong); clear it to wait for the next."""

    # -- public --------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        """Call ``handler(first argument)`` for each ``event`` the server sends."""
        self._handlers[event] = handler

    async def connect(self, transports: list[str], auth: Any, timeout: float) -> None:
        """Open the Engine.IO session (upgrading when both transports are allowed), then CONNECT."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout))
        if transports == [WEBSOCKET]:
            await self._open_websocket(timeout)
        else:
            await self._open_polling(timeout)
            assert self._handshake is not None
            if WEBSOCKET in transports and WEBSOCKET in self._handshake.upgrades:
                await self._try_upgrade(timeout)
        self._reader = asyncio.create_task(self._read_loop())
        await self._send(sio.encode_client_connect(auth))
        await asyncio.wait_for(asyncio.shield(self._connected), timeout)
        self.connected = True

    async def call(self, event: str, data: Any, timeout: float) -> Any:
        """Emit ``event`` asking for an ack; the ack's first argument (``TimeoutError`` when none comes)."""
        ack_id = self._next_ack
        self._next_ack += 1
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = answer
        try:
            await self._send(_text_event(event, data, ack_id))
            return await asyncio.wait_for(answer, timeout)
        finally:
            self._acks.pop(ack_id, None)

    async def emit(self, event: str, data: Any) -> None:
        await self._send(_text_event(event, data))

    async def disconnect(self) -> None:
        """Leave ``/`` and close the Engine.IO session; the client cannot be used again."""
        try:
            if self.connected and not self._closed:
                with contextlib.suppress(ClientError, aiohttp.ClientError, OSError, TimeoutError):
                    await asyncio.wait_for(self._send(sio.encode_disconnect()), 2)
                    await asyncio.wait_for(self._send_packet(eio.CLOSE), 2)
        finally:
            self._finish(ClientError("the client disconnected"))
            for task in (*self._tasks, self._reader):
                if task is not None:
                    task.cancel()
            if self._reader is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader
            ws, http, self._ws, self._http = self._ws, self._http, None, None
            if ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2)
            if http is not None:
                await http.close()

    # -- opening -------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise ClientError("not connected")
        return self._http

    async def _open_polling(self, timeout: float) -> None:
        async with self._session().get(endpoint(self.url, False), ssl=self.verify_ssl,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.text()
            if response.status != 200:
                raise ClientError(f"the handshake GET answered HTTP {response.status}: {body.strip()[:100]}")
        parts = eio.split_payload(body)
        self._take_open(parts[0])
        self.transport = POLLING
        for part in parts[1:]:
            self._dispatch(eio.decode_part(part))

    async def _open_websocket(self, timeout: float) -> None:
        self._ws = await self._session().ws_connect(
            endpoint(self.url, True), ssl=self.verify_ssl, timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
            autoping=True)
        first = await self._ws.receive(timeout)
        if first.type is not aiohttp.WSMsgType.TEXT:
            raise ClientError(f"the websocket's first frame was {first.type.name}, not the OPEN packet")
        self._take_open(first.data)
        self.transport = WEBSOCKET

    def _take_open(self, frame: str) -> None:
        try:
            kind, data = eio.decode_frame(frame)
            if kind != eio.OPEN:
                raise eio.ProtocolError(f"expected the OPEN packet, got type {kind!r}")
            self._handshake = eio.parse_open(data)
        except eio.ProtocolError as exc:
            raise ClientError(f"not an Engine.IO v4 server: {exc}") from None
        self.sid = self._handshake.sid

    async def _try_upgrade(self, timeout: float) -> None:
        """The probe; on any failure the session simply stays on polling, as clients do."""
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            ws = await self._session().ws_connect(
                endpoint(self.url, True, self.sid), ssl=self.verify_ssl,
                timeout=aiohttp.ClientWSTimeout(ws_close=timeout), autoping=True)
            await ws.send_str(eio.encode_packet(eio.PING, "probe"))
            answer = await ws.receive(timeout)
            if answer.type is not aiohttp.WSMsgType.TEXT or answer.data != eio.PONG + "probe":
                raise ClientError("no 3probe answer")
            await ws.send_str(eio.UPGRADE)
        except (ClientError, aiohttp.ClientError, OSError, TimeoutError):
            if ws is not None:
                await ws.close()
            return
        self._ws = ws
        self.transport = WEBSOCKET

    # -- sending -------------------------------------------------------
    async def _send(self, message: str) -> None:
        await self._send_packet(eio.encode_packet(eio.MESSAGE, message))

    async def _send_packet(self, packet: str) -> None:
        if self._closed:
            raise ClientError("the connection is closed")
        if self._ws is not None:
            await self._ws.send_str(packet)
            return
        async with self._post_lock, self._session().post(
                endpoint(self.url, False, self.sid), data=eio.encode_payload([packet]),
                headers={"Content-Type": "text/plain;charset=UTF-8"}, ssl=self.verify_ssl,
                timeout=aiohttp.ClientTimeout(total=30)) as response:
            if response.status != 200:
                raise ClientError(f"a polling POST answered HTTP {response.status}")
            await response.read()

    # -- receiving -----------------------------------------------------
    async def _read_loop(self) -> None:
        why: Exception = ClientError("the server closed the connection")
        try:
            while not self._closed:
                if self._ws is not None:
                    message = await self._ws.receive()
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        break
                    self._dispatch(eio.decode_frame(message.data))
                else:
                    for part in eio.split_payload(await self._poll()):
                        self._dispatch(eio.decode_part(part))
        except (aiohttp.ClientError, OSError, TimeoutError, eio.ProtocolError, sio.ProtocolError,
                ClientError) as exc:
            why = ClientError(f"connection lost: {exc or type(exc).__name__}")
        self._finish(why)

    async def _poll(self) -> str:
        handshake = self._handshake
        assert handshake is not None
        wait = handshake.ping_interval + handshake.ping_timeout + SLACK
        async with self._session().get(endpoint(self.url, False, self.sid), ssl=self.verify_ssl,
                                       timeout=aiohttp.ClientTimeout(total=wait)) as response:
            body = await response.text()
            if response.status != 200:
                raise ClientError(f"a long-poll GET answered HTTP {response.status}")
            return body

    def _dispatch(self, packet: eio.Packet) -> None:
        kind, data = packet
        if kind == eio.PING:
            self.pinged.set()
            task = asyncio.get_running_loop().create_task(self._pong())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == eio.CLOSE:
            self._finish(ClientError("the server closed the session"))
        elif kind == eio.MESSAGE and isinstance(data, str):
            self._message(sio.parse(data))

    async def _pong(self) -> None:
        with contextlib.suppress(ClientError, aiohttp.ClientError, OSError, TimeoutError):
            await self._send_packet(eio.PONG)

    def _message(self, header: sio.Header) -> None:
        if header.namespace != sio.NAMESPACE:
            return
        if header.kind == sio.CONNECT and not self._connected.done():
            self._connected.set_result(None)
        elif header.kind == sio.CONNECT_ERROR and not self._connected.done():
            self._connected.set_exception(ClientError(connect_error_text(header.data)))
        elif header.kind == sio.DISCONNECT:
            self._finish(ClientError("the server disconnected this client"))
        elif header.kind == sio.ACK and header.ack_id is not None:
            answer = self._acks.get(header.ack_id)
            if answer is not None and not answer.done():
                args = header.data if isinstance(header.data, list) else []
                answer.set_result(args[0] if args else None)
        elif header.kind == sio.EVENT and isinstance(header.data, list) and header.data:
            handler = self._handlers.get(str(header.data[0]))
            if handler is not None:
                handler(header.data[1] if len(header.data) > 1 else None)

    def _finish(self, why: Exception) -> None:
        """The connection is over: every wait ends with ``why``."""
        self._closed = True
        self.connected = False
        waits = [self._connected, *self._acks.values()]
        for waiter in waits:
            if not waiter.done():
                waiter.set_exception(why)
                waiter.exception()  # retrieved: an unawaited one must not warn
