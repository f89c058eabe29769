"""Socket.IO v5, sans I/O: packet codec, binary attachments, one connection's decoder.

Only the main namespace ``/`` is served: a CONNECT to any other gets the
protocol's CONNECT_ERROR, and any other packet for one is a violation. A
client never gets asked for an ack, so an ACK from it is a violation too.
Attachments are counted as they arrive, against a byte limit, and a binary
packet left unfinished is reported by ``Decoder.overdue`` for the shell to
end its session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = "0123456"
NAMESPACE = "/"
MAX_ATTACHMENTS = 10
MAX_ACK_ID_DIGITS = 100
MAX_NESTING = 64
BINARY_SLACK = 64 * 1024
"""Bytes over the relay limit one binary packet (header and attachments) may reach."""
BINARY_DEADLINE = 10.0
"""Seconds a binary packet may wait for its attachments."""
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)


class ProtocolError(Exception):
    """The client broke Socket.IO; the message says how. Its session is closed."""


@dataclass(slots=True)
class Connect:
    namespace: str
    auth: Any


@dataclass(slots=True)
class Disconnect:
    namespace: str


@dataclass(slots=True)
class Event:
    """An event on ``/``: ``args[0]`` is its name (a string, not a reserved one)."""

    args: list[Any]
    ack_id: int | None


Packet = Connect | Disconnect | Event


# -- encoding ------------------------------------------------------------
def dumps(value: Any) -> str:
    """Compact JSON; integers beyond 64 bits through the stdlib (orjson refuses them)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))


def encode_connect(sid: str) -> str:
    return CONNECT + dumps({"sid": sid})


def encode_connect_error(namespace: str, data: Any) -> str:
    prefix = "" if namespace == NAMESPACE else namespace + ","
    return CONNECT_ERROR + prefix + dumps(data)


def encode_disconnect() -> str:
    return DISCONNECT


def encode_ack(ack_id: int, args: list[Any]) -> str:
    return f"{ACK}{ack_id}{dumps(args)}"


def encode_event(args: list[Any], binary: bool | None = None,
                 ack_id: int | None = None) -> str | list[str | bytes]:
    """An EVENT packet; with binary (``None``: look), a BINARY_EVENT and its attachments.

    ``ack_id`` asks the other side for an ACK (the doctor's client does; this server never does).
    """
    ack = "" if ack_id is None else str(ack_id)
    if binary is False:
        return EVENT + ack + dumps(args)
    attachments: list[bytes] = []
    data = _deconstruct(args, attachments)
    if not attachments:
        return EVENT + ack + dumps(args)
    return [f"{BINARY_EVENT}{len(attachments)}-{ack}{dumps(data)}", *attachments]


def encode_client_connect(auth: Any = None) -> str:
    """A client's CONNECT to ``/``, with its ``auth`` payload when there is one."""
    return CONNECT if auth is None else CONNECT + dumps(auth)


def _deconstruct(value: Any, attachments: list[bytes]) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        attachments.append(bytes(value))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(value, list):
        return [_deconstruct(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: _deconstruct(v, attachments) for k, v in value.items()}
    return value


# -- decoding ------------------------------------------------------------
@dataclass(slots=True)
class _Pending:
    """A binary packet waiting for its attachments."""

    data: list[Any]
    ack_id: int | None
    expected: int
    size: int
    started: float
    attachments: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Header:
    """One text packet's parts, as `parse` reads them (for a client: any packet type)."""

    kind: str
    attachments: int
    namespace: str
    ack_id: int | None
    data: Any


def parse(text: str) -> Header:
    """The parts of one text packet; raises ``ProtocolError``."""
    kind = text[:1]
    if not kind or kind not in "0123456":
        raise ProtocolError(f"unknown Socket.IO packet type {kind!r}")
    at, end = 1, len(text)
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", 1, 12)
        if dash < 0 or not text[1:dash].isdigit():
            raise ProtocolError("binary packet without an attachment count")
        attachments = int(text[1:dash])
        at = dash + 1
    namespace = NAMESPACE
    if text[at:at + 1] == "/":
        comma = text.find(",", at)
        stop = end if comma < 0 else comma
        namespace = text[at:stop]
        at = stop + 1 if comma >= 0 else end
    digits = at
    while digits < end and "0" <= text[digits] <= "9":
        digits += 1
    if digits - at > MAX_ACK_ID_DIGITS:
        raise ProtocolError("ack id is longer than 100 digits")
    ack_id = int(text[at:digits]) if digits > at else None
    data: Any = None
    if digits < end:
        try:
            data = orjson.loads(text[digits:])
        except orjson.JSONDecodeError:
            raise ProtocolError("packet data is not JSON") from None
    return Header(kind, attachments, namespace, ack_id, data)


def event_shape_error(data: Any) -> str | None:
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        return "event packet must be a non-empty array starting with a name"
    if data[0] in RESERVED_EVENTS:
        return f"reserved event name {data[0]!r}"
    return None


def check_placeholders(value: Any, count: int, depth: int = 0) -> None:
    """Every placeholder must name an attachment 0..count-1 (an int, not a bool)."""
    if depth > MAX_NESTING:
        raise ProtocolError("binary packet nested too deeply")
    if isinstance(value, list):
        for item in value:
            check_placeholders(item, count, depth + 1)
    elif isinstance(value, dict):
        if value.get("_placeholder") is True and "num" in value:
            num = value["num"]
            if type(num) is not int or not 0 <= num < count:
                raise ProtocolError(f"binary placeholder num {num!r} is not 0..{count - 1}")
            return
        for item in value.values():
            check_placeholders(item, count, depth + 1)


def _reconstruct(value: Any, attachments: list[bytes]) -> Any:
    if isinstance(value, list):
        return [_reconstruct(v, attachments) for v in value]
    if isinstance(value, dict):
        if value.get("_placeholder") is True and "num" in value:
            return attachments[value["num"]]
        return {k: _reconstruct(v, attachments) for k, v in value.items()}
    return value


class Decoder:
    """One connection's inbound Socket.IO packets, attachments assembled.

    ``feed`` takes one Engine.IO message (text packet or binary attachment)
    and returns the packet it completes, None while attachments are due, or
    raises ``ProtocolError``. ``connected`` says whether ``/`` is connected:
    before that only CONNECT is taken.
    """

    __slots__ = ("_pending", "connected", "max_packet_bytes")

    def __init__(self, max_relay_bytes: int) -> None:
        self.max_packet_bytes = max_relay_bytes + BINARY_SLACK
        self.connected = False
        self._pending: _Pending | None = None

    def overdue(self, now: float) -> bool:
        """Whether a binary packet has waited past ``BINARY_DEADLINE`` for its attachments."""
        pending = self._pending
        return pending is not None and now - pending.started > BINARY_DEADLINE

    @property
    def pending_since(self) -> float | None:
        return None if self._pending is None else self._pending.started

    def feed(self, message: str | bytes, now: float) -> Packet | None:
        pending = self._pending
        if pending is not None:
            if not isinstance(message, bytes):
                raise ProtocolError("text packet while binary attachments were due")
            pending.size += len(message)
            if pending.size > self.max_packet_bytes:
                raise ProtocolError(
                    f"binary packet past {self.max_packet_bytes} bytes with attachments still due"
                )
            pending.attachments.append(message)
            if len(pending.attachments) < pending.expected:
                return None
            self._pending = None
            return Event(_reconstruct(pending.data, pending.attachments), pending.ack_id)
        if isinstance(message, bytes):
            raise ProtocolError("binary attachment without a binary packet header")
        try:
            header = parse(message)
        except RecursionError:
            raise ProtocolError("packet data nested too deeply") from None
        kind = header.kind
        if kind == CONNECT:
            return Connect(header.namespace, header.data)
        if header.namespace != NAMESPACE:
            if kind == DISCONNECT:
                return Disconnect(header.namespace)
            raise ProtocolError(f"packet for namespace {header.namespace!r}, never connected")
        if not self.connected:
            raise ProtocolError("packet before the Socket.IO connect")
        if kind == DISCONNECT:
            return Disconnect(header.namespace)
        if kind == EVENT:
            why = event_shape_error(header.data)
            if why is not None:
                raise ProtocolError(why)
            return Event(header.data, header.ack_id)
        if kind == BINARY_EVENT:
            count = header.attachments
            if not 1 <= count <= MAX_ATTACHMENTS:
                raise ProtocolError(
                    f"binary packet announcing {count} attachments (1 to {MAX_ATTACHMENTS})"
                )
            why = event_shape_error(header.data)
            if why is not None:
                raise ProtocolError(why)
            check_placeholders(header.data, count)
            self._pending = _Pending(header.data, header.ack_id, count, len(message), now)
            return None
        if kind in (ACK, BINARY_ACK):
            raise ProtocolError("ACK packet: this server never asks a client for one")
        raise ProtocolError(f"Socket.IO packet type {kind!r} not allowed from a client")
