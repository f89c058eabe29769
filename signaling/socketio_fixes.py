"""Corrections to python-engineio 4.15.1 internals, in one place.

python-engineio is pinned exactly (pyproject.toml) because each correction
below replaces a piece of its behaviour; every one has a test in
``tests/signaling/test_socketio_fixes.py`` that fails without it.

- ``PollingSocket.handle_post_request``: upstream reads a polling POST with
  one ``read(Content-Length)``, which on aiohttp returns only the bytes that
  have arrived so far (a large POST is decoded truncated), and refuses
  payloads of more than 16 packets, which the official JS client sends when
  it batches (the messages would be lost). We read the whole declared body
  and accept any number of packets that fit in it.
- ``PollingSocket.poll``: upstream answers a long-poll with everything
  queued, but python-engineio's own client refuses a payload of more than
  16 packets (and drops the session); we answer with at most 16 and leave
  the rest for the next poll.
- ``PollingSocket.close``: upstream leaves a pending long-poll GET waiting
  until the ping timeout after the client's Engine.IO close; we wake it.
- ``WebSocket``: upstream's aiohttp wrapper leaves per-message deflate on
  whenever the client offers it (~90 KB per idle connection) and forgets the
  close code; ours makes deflate a setting and records the close code, which
  tells a deliberate close (1000, 1001) from a lost connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio.async_socket
from aiohttp import WSMsgType, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

DELIBERATE_CLOSE_CODES = frozenset({1000, 1001})
PACKETS_PER_POLL = 16  # python-engineio clients refuse more in one payload


class PollingSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket with the corrections above (set on connect)."""

    ws_close_code: int | None = None

    async def poll(self) -> list[Any]:
        try:
            first = await asyncio.wait_for(
                self.queue.get(), self.server.ping_interval + self.server.ping_timeout
            )
            self.queue.task_done()
        except (asyncio.TimeoutError, asyncio.CancelledError):
            raise eio_exceptions.QueueEmpty() from None
        if first is None:
            return []
        packets = [first]
        limit = PACKETS_PER_POLL if not self.upgraded else None
        while limit is None or len(packets) < limit:
            try:
                pkt = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)  # keep the end marker for the next poll
                break
            packets.append(pkt)
        return packets

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        try:
            length = int(environ.get("CONTENT_LENGTH", "0"))
        except ValueError:
            raise eio_exceptions.ContentTooLongError() from None
        if length < 0 or length > self.server.max_http_buffer_size:
            raise eio_exceptions.ContentTooLongError()
        try:
            raw = await environ["wsgi.input"].readexactly(length)
        except asyncio.IncompleteReadError:
            raise eio_exceptions.ContentTooLongError() from None
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise eio_exceptions.UnknownPacketError() from None
        if not body:
            return
        for encoded in body.split("\x1e"):
            await self.receive(eio_packet.Packet(encoded_packet=encoded))

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        was_open = not self.closed and not self.closing
        await super().close(wait=wait, abort=abort, reason=reason)
        if was_open and not self.upgraded:
            # Wake a long-poll GET that would otherwise hang until ping timeout.
            self.queue.put_nowait(None)


class WebSocket:
    """aiohttp websocket for python-engineio, deflate optional, close code kept."""

    compress = False

    def __init__(self, handler: Any, server: Any) -> None:
        self.handler = handler
        self.server = server
        self._sock: web.WebSocketResponse | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size,
            compress=self.compress,
            autoping=True,
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock

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
        msg = await self._sock.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            data: str | bytes = msg.data
            return data
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            owner = getattr(self.handler, "__self__", None)
            if owner is not None:
                owner.ws_close_code = self._sock.close_code
        raise OSError(f"websocket ended ({msg.type.name})")


def install(eio_server: Any, *, websocket_compression: bool) -> None:
    """Make ``eio_server`` use the corrected websocket wrapper."""
    websocket = type("ConfiguredWebSocket", (WebSocket,), {"compress": websocket_compression})
    eio_server._async = {**eio_server._async, "websocket": websocket}


def adopt(eio_socket: Any) -> None:
    """Give a freshly created Engine.IO socket the corrected behaviour.

    python-engineio builds its socket class inline in ``_handle_connect``
    with no factory to override, so we swap the class of the new instance in
    the connect hook, before it handles any request.
    """
    if type(eio_socket) is engineio.async_socket.AsyncSocket:
        eio_socket.__class__ = PollingSocket


async def force_close(eio_server: Any, eio_sid: str) -> None:
    """Close a session now, without waiting for its outbound queue to drain.

    Upstream's ``disconnect`` waits for the queue to empty, which never
    happens behind a client that stopped reading.
    """
    eio_socket = eio_server.sockets.pop(eio_sid, None)
    if eio_socket is None:
        return
    await eio_socket.close(wait=False, abort=False, reason=eio_server.reason.SERVER_DISCONNECT)
    eio_socket.queue.put_nowait(None)  # ends the websocket writer / long-poll
