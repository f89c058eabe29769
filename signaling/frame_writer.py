"""WebSocket frames written straight to a transport, coalesced per event-loop turn.

A relay server mostly writes small frames, and one ``transport.write`` per
frame is one ``send`` system call each: in the relay benchmark that was 60 %
of the server's CPU. A client with a window of requests in flight sends
several in one TCP segment, which the server handles in one turn of the
event loop; the frames those requests produce for one connection (acks to
the sender, relays to its partner) go out in one write at the end of the
turn. Nothing waits longer than that turn.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

TEXT = 0x1
BINARY = 0x2

_HEADER_SHORT = struct.Struct("!BB").pack
_HEADER_MEDIUM = struct.Struct("!BBH").pack
_HEADER_LONG = struct.Struct("!BBQ").pack


def frame_header(size: int, opcode: int) -> bytes:
    """The header of an unmasked, final frame (RFC 6455 5.2), as a server sends it."""
    if size < 126:
        return _HEADER_SHORT(0x80 | opcode, size)
    if size < 65536:
        return _HEADER_MEDIUM(0x80 | opcode, 126, size)
    return _HEADER_LONG(0x80 | opcode, 127, size)


class FrameWriter:
    """Frames for one connection, written to its transport once per loop turn.

    ``on_overflow(waiting)`` is called when the transport holds more than
    ``max_buffered`` bytes after a write: the client stopped reading.
    """

    __slots__ = ("_pending", "max_buffered", "on_overflow", "transport")

    def __init__(
        self, transport: asyncio.Transport, max_buffered: int, on_overflow: Callable[[int], None]
    ) -> None:
        self.transport = transport
        self.max_buffered = max_buffered
        self.on_overflow = on_overflow
        self._pending: list[bytes] = []

    def write(self, payload: bytes, opcode: int) -> None:
        pending = self._pending
        if not pending:
            asyncio.get_running_loop().call_soon(self.flush)
        pending.append(frame_header(len(payload), opcode))
        pending.append(payload)

    def write_packet(self, encoded: str | bytes) -> None:
        """One encoded Engine.IO packet: text as a text frame, bytes as a binary one."""
        if isinstance(encoded, str):
            self.write(encoded.encode(), TEXT)
        else:
            self.write(encoded, BINARY)

    def flush(self) -> None:
        """Write what is pending now (also called at the end of the turn)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(b"".join(pending))
        waiting = transport.get_write_buffer_size()
        if waiting > self.max_buffered:
            self.on_overflow(waiting)

    def discard(self) -> None:
        """Forget what is pending (the connection is being dropped)."""
        self._pending = []
