"""One lean Redis connection for the relay's hot path: commands written at
once, replies read by hiredis, in order.

redis-py's client costs ~125 us of CPU per command on this path (pool
checkout, a timeout and a retry wrapper per call, response callbacks); a
cross-node relay took three such commands (route, inbox wait, inbox take)
when batches are small. A subscriber (``subscribe``) hears the wake-ups of
its node's inbox on one such connection. Here a command is one ``transport.write`` and a
future, ~30 us. Concurrent calls are pipelined on the one connection and
answered in the order they were written.

Timeouts are not per call: the owner calls ``check`` now and then, and a
reply that is overdue closes the connection, failing every call in flight
with ``ConnectionError`` (as redis-py's socket timeout did). A failed call
is never sent again, except one Redis answered ``NOSCRIPT`` (it did not
run): the script is loaded and the call sent once more.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


def _bulk(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return str(value).encode()
    raise TypeError(f"a Redis argument must be bytes, str or int, not {type(value).__name__}")


def encode_command(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _bulk(arg)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


def _unread(future: asyncio.Future[Any]) -> None:
    """A reply nobody awaits (its failure shows in the call that follows it)."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        # (future, deadline) per command written, oldest first
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.on_message: Callable[[], None] | None = None  # once subscribed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisConnectionError(f"Redis's reply could not be read: {exc}"))
                return
            if reply is False:
                return
            if self.on_message is not None and isinstance(reply, list) and reply[:1] == [b"message"]:
                self.on_message()
                continue
            if not waiting:  # nothing asked for this: the stream is out of step
                self.abort(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = waiting.popleft()
            if not future.done():  # its caller may have been cancelled
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.on_message is not None:
            self.on_message()  # the subscriber hears of the end too (``subscribed`` is now False)
        self._fail_waiting(
            RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def abort(self, error: Exception) -> None:
        self.closed = True
        self._fail_waiting(error)
        if self.transport is not None:
            self.transport.abort()

    def _fail_waiting(self, error: Exception) -> None:
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)


class RedisLine:
    """A connection made like the pool's (``pool.connection_kwargs``: TCP, TLS
    or a Unix socket, its credentials and database), opened on first use and
    again after it broke."""

    def __init__(self, connection_class: type, connection_kwargs: dict[str, Any], timeout: float,
                 connect_timeout: float = 2.0) -> None:
        self._template = connection_class(**connection_kwargs)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._loaded: set[str] = set()  # scripts (by digest) loaded on this connection

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        conn = self._template
        transport: asyncio.BaseTransport
        if isinstance(conn, UnixDomainSocketConnection):
            transport, protocol = await loop.create_unix_connection(_Protocol, conn.path)
        else:
            context: ssl.SSLContext | None = None
            if isinstance(conn, SSLConnection):
                context = conn.ssl_context.get()
            transport, protocol = await loop.create_connection(
                _Protocol, conn.host, conn.port, ssl=context)
        try:
            ready: list[asyncio.Future[Any]] = []
            if conn.password is not None:
                auth = (conn.username, conn.password) if conn.username else (conn.password,)
                ready.append(self._send(protocol, ("AUTH", *auth), self.timeout))
            if conn.db:
                ready.append(self._send(protocol, ("SELECT", conn.db), self.timeout))
            for reply in await asyncio.gather(*ready):
                if isinstance(reply, hiredis.ReplyError):
                    raise RedisConnectionError(f"Redis refused the connection: {reply}")
        except BaseException:
            transport.abort()
            raise
        return protocol

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            protocol = self._protocol
            if protocol is None or protocol.closed:
                self._loaded = set()
                try:
                    protocol = await asyncio.wait_for(self._open(), self.connect_timeout)
                except TimeoutError:
                    raise RedisConnectionError("timed out connecting to Redis") from None
                except OSError as exc:
                    raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
                self._protocol = protocol
        return protocol

    @staticmethod
    def _send(protocol: _Protocol, args: tuple[Any, ...], timeout: float) -> asyncio.Future[Any]:
        if protocol.closed or protocol.transport is None:
            raise RedisConnectionError("connection to Redis lost")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.transport.write(encode_command(args))
        protocol.waiting.append((future, loop.time() + timeout))
        return future

    async def call(self, *args: Any) -> Any:
        """Send one command; its reply (Redis's error reply raised as ``ResponseError``)."""
        protocol = await self._connected()
        reply = await self._send(protocol, args, self.timeout)
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def evalsha(self, sha: str, body: Any, args: list[Any]) -> Any:
        """Run a script by its digest, loading it first on a fresh connection."""
        protocol = await self._connected()
        if sha not in self._loaded:
            self._loaded.add(sha)
            _unread(self._send(protocol, ("SCRIPT", "LOAD", body), self.timeout))  # answered before the call
        reply = await self._send(protocol, ("EVALSHA", sha, 0, *args), self.timeout)
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            # It did not run (Redis forgot its scripts): load it and ask once more.
            _unread(self._send(protocol, ("SCRIPT", "LOAD", body), self.timeout))
            reply = await self._send(protocol, ("EVALSHA", sha, 0, *args), self.timeout)
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def subscribe(self, channel: bytes, on_message: Callable[[], None]) -> None:
        """Make this connection a subscriber of ``channel``: ``on_message()`` for each
        message published there, and once more when the connection ends (then
        ``subscribed`` is False)."""
        protocol = await self._connected()
        protocol.on_message = on_message
        await self.call("SUBSCRIBE", channel)

    @property
    def subscribed(self) -> bool:
        protocol = self._protocol
        return protocol is not None and not protocol.closed and protocol.on_message is not None

    def check(self, now: float) -> None:
        """Close the connection if its oldest reply is overdue (``now``: the loop's clock)."""
        protocol = self._protocol
        if protocol is not None and protocol.waiting and protocol.waiting[0][1] < now:
            protocol.abort(RedisConnectionError(f"Redis did not answer within {self.timeout:g} s"))

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.abort(RedisConnectionError("connection closed"))
