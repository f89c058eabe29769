"""Engine.IO v4, sans I/O: packet and payload codec, and one session's state.

A session is data (``EngineSession``): its state (``State``), its ping
schedule, and the packets waiting for a long-poll. The shell feeds it what
the client sent (``receive``) and the time when its timer fires
(``on_timer``), and carries out the ``Action`` each answers with.

State table (client input -> new state, what the shell does)::

    POLLING    websocket with the sid opened  -> PROBING
    PROBING    "2probe" on that websocket     -> UPGRADING  (send "3probe", NOOP to polling)
    PROBING    anything else / end / timeout  -> POLLING    (drop the probe websocket)
    UPGRADING  "5" on that websocket          -> WEBSOCKET  (queued packets go to it)
    UPGRADING  anything else / end / timeout  -> POLLING    (drop the probe websocket)
    any        "1" (close)                    -> CLOSED     (client close: left)
    any        "3" (pong)                     -> same       (next ping in ping_interval)
    any        ping deadline passed twice     -> CLOSED     (ping timeout: lost)
    any        other packet type, undecodable -> CLOSED     (violation: left)
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections import deque
from dataclasses import dataclass

import orjson

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = "0123456"
SEPARATOR = "\x1e"
PACKETS_PER_POLL = 16
"""python-engineio's client refuses a payload of more packets; the rest waits for the next poll."""
MAX_QUEUED_PACKETS = 2000
MIN_QUEUED_BYTES = 8 * 1024 * 1024
PING_GRACE = 0.1
"""Seconds given to a pong already received (unread) once a ping deadline has passed."""
UPGRADE_TIMEOUT = 10.0
"""Seconds an upgrade probe may take before the session stays on polling."""


class ProtocolError(Exception):
    """The client broke Engine.IO; the message says how. Its session is closed."""


class State(enum.Enum):
    POLLING = "polling"
    PROBING = "probing"  # a websocket with the sid is open, "2probe" not seen yet
    UPGRADING = "upgrading"  # "3probe" sent, waiting for "5"
    WEBSOCKET = "websocket"
    CLOSED = "closed"


class Reason(enum.Enum):
    """Why a session ended, as the logs and the lost/left rule name it."""

    CLIENT_CLOSE = "client disconnect"
    SERVER_CLOSE = "server disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"


class Action(enum.Enum):
    NONE = "none"
    SEND_PING = "send-ping"
    CLOSE_PING_TIMEOUT = "ping-timeout"


Packet = tuple[str, str | bytes]
"""(type, data); a binary MESSAGE is ``(MESSAGE, bytes)``."""


def decode_frame(frame: str | bytes) -> Packet:
    """One websocket frame: text is a typed packet, binary is a binary MESSAGE."""
    if isinstance(frame, bytes):
        return MESSAGE, frame
    kind = frame[:1]
    if kind not in "0123456" or not kind:
        raise ProtocolError(f"unknown Engine.IO packet type {kind!r}")
    return kind, frame[1:]


def split_payload(body: str) -> list[str]:
    """A polling POST body's packets, still encoded (decode each with ``decode_part``)."""
    return body.split(SEPARATOR)


def decode_part(part: str) -> Packet:
    """One packet of a polling payload: ``b`` + base64 is a binary message."""
    if part[:1] == "b":
        try:
            return MESSAGE, base64.b64decode(part[1:], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("binary packet is not valid base64") from None
    return decode_frame(part)


def decode_payload(body: str) -> list[Packet]:
    """A polling POST body: packets separated by U+001E, ``b`` + base64 for binary."""
    return [decode_part(part) for part in split_payload(body)]


def encode_packet(kind: str, data: str = "") -> str:
    return kind + data


def encode_payload(packets: list[str | bytes]) -> str:
    """Encoded packets (text with its type digit, or raw binary messages) as one poll answer."""
    return SEPARATOR.join(
        p if isinstance(p, str) else "b" + base64.b64encode(p).decode("ascii") for p in packets
    )


def open_packet(sid: str, *, upgrades: bool, ping_interval: float, ping_timeout: float,
                max_payload: int) -> str:
    info = {
        "sid": sid,
        "upgrades": ["websocket"] if upgrades else [],
        "pingInterval": int(ping_interval * 1000),
        "pingTimeout": int(ping_timeout * 1000),
        "maxPayload": max_payload,
    }
    return OPEN + orjson.dumps(info).decode()


@dataclass(frozen=True, slots=True)
class Handshake:
    """The OPEN packet's fields, as a client reads them (times in seconds)."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int


def parse_open(data: str | bytes) -> Handshake:
    """The data of an OPEN packet (after its ``0``); raises ``ProtocolError``."""
    try:
        info = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError("OPEN packet data is not JSON") from None
    if not isinstance(info, dict) or not isinstance(info.get("sid"), str) or not info["sid"]:
        raise ProtocolError("OPEN packet without a sid")
    upgrades = info.get("upgrades", [])
    numbers = [info.get(key) for key in ("pingInterval", "pingTimeout", "maxPayload")]
    if not isinstance(upgrades, list) or not all(type(n) is int and n >= 0 for n in numbers):
        raise ProtocolError("OPEN packet with malformed upgrades, pingInterval, pingTimeout or maxPayload")
    interval, timeout, max_payload = (int(n or 0) for n in numbers)
    return Handshake(info["sid"], tuple(u for u in upgrades if isinstance(u, str)),
                     interval / 1000, timeout / 1000, max_payload)


def _size(packet: str | bytes) -> int:
    return len(packet) + 1


@dataclass(slots=True)
class Inbound:
    """What one client packet means for the layer above: a message, or the end."""

    message: str | bytes | None = None
    closed: Reason | None = None


NOTHING = Inbound()


class EngineSession:
    """One Engine.IO session's state. All times are the caller's clock, in seconds."""

    __slots__ = (
        "_queue",
        "grace_given",
        "max_queued_bytes",
        "next_timer",
        "ping_interval",
        "ping_outstanding",
        "ping_timeout",
        "pong_deadline",
        "queued_bytes",
        "sid",
        "state",
        "upgrade_deadline",
    )

    def __init__(self, sid: str, *, websocket: bool, now: float, ping_interval: float,
                 ping_timeout: float, max_payload: int) -> None:
        self.sid = sid
        self.state = State.WEBSOCKET if websocket else State.POLLING
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.ping_outstanding = False
        self.grace_given = False
        self.pong_deadline = 0.0
        self.next_timer = now + ping_interval
        self.upgrade_deadline = 0.0
        self._queue: deque[str | bytes] | None = None  # made on first use (~600 B)
        self.queued_bytes = 0
        self.max_queued_bytes = max(MIN_QUEUED_BYTES, 3 * max_payload)

    # -- inbound ---------------------------------------------------------
    def receive(self, packet: Packet, now: float) -> Inbound:
        """A packet the client sent on its current transport."""
        if self.state is State.CLOSED:
            return NOTHING
        kind, data = packet
        if kind == MESSAGE:
            return Inbound(message=data)
        if kind == PONG:
            if self.ping_outstanding:
                self.ping_outstanding = False
                self.grace_given = False
                self.next_timer = now + self.ping_interval
            return NOTHING
        if kind == CLOSE:
            self.state = State.CLOSED
            return Inbound(closed=Reason.CLIENT_CLOSE)
        if kind == UPGRADE and self.state is State.WEBSOCKET:
            return NOTHING  # a late or repeated "5": harmless
        raise ProtocolError(f"Engine.IO packet type {kind!r} not allowed from a client here")

    # -- upgrade ---------------------------------------------------------
    def probe_opened(self, now: float) -> None:
        """A websocket with this session's sid opened; raises if none may now."""
        if self.state is not State.POLLING:
            raise ProtocolError(f"websocket upgrade while {self.state.value}")
        self.state = State.PROBING
        self.upgrade_deadline = now + UPGRADE_TIMEOUT

    def probe_frame(self, frame: str | bytes) -> bool:
        """A frame on the probe websocket; True when the upgrade is complete.

        ``2probe`` moves to UPGRADING (the shell answers ``3probe`` and ends a
        pending poll with a NOOP); ``5`` then completes it. Anything else is
        a failed probe: ``ProtocolError``, and the session stays on polling.
        """
        if self.state is State.PROBING and frame == PING + "probe":
            self.state = State.UPGRADING
            self.queue(NOOP)
            return False
        if self.state is State.UPGRADING and frame == UPGRADE:
            self.state = State.WEBSOCKET
            return True
        self.probe_failed()
        raise ProtocolError(f"unexpected upgrade probe frame {str(frame)[:20]!r}")

    def probe_failed(self) -> None:
        """The probe ended or stalled: polling carries on."""
        if self.state in (State.PROBING, State.UPGRADING):
            self.state = State.POLLING

    @property
    def polling(self) -> bool:
        return self.state in (State.POLLING, State.PROBING, State.UPGRADING)

    # -- time ------------------------------------------------------------
    def on_timer(self, now: float) -> Action:
        """The timer set for ``next_timer`` fired (maybe late); then read ``next_timer`` again."""
        if self.state is State.CLOSED or now < self.next_timer:
            return Action.NONE
        if not self.ping_outstanding:
            self.ping_outstanding = True
            self.pong_deadline = now + self.ping_timeout
            self.next_timer = self.pong_deadline
            return Action.SEND_PING
        if not self.grace_given:
            # A stalled process may hold the pong unread: read first, then decide.
            self.grace_given = True
            self.next_timer = now + PING_GRACE
            return Action.NONE
        self.state = State.CLOSED
        return Action.CLOSE_PING_TIMEOUT

    # -- outbound (polling) ----------------------------------------------
    def queue(self, packet: str | bytes) -> bool:
        """Hold an encoded packet for the next poll; False when over the bounds (abort)."""
        size = _size(packet)
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= MAX_QUEUED_PACKETS or self.queued_bytes + size > self.max_queued_bytes:
            return False
        queue.append(packet)
        self.queued_bytes += size
        return True

    def take(self, limit: int | None = PACKETS_PER_POLL) -> list[str | bytes]:
        """Queued packets for one poll answer (all of them with ``limit`` None)."""
        out: list[str | bytes] = []
        queue = self._queue
        if queue is None:
            return out
        while queue and (limit is None or len(out) < limit):
            packet = queue.popleft()
            self.queued_bytes -= _size(packet)
            out.append(packet)
        return out

    @property
    def queued(self) -> int:
        return 0 if self._queue is None else len(self._queue)

    def clear(self) -> None:
        self._queue = None
        self.queued_bytes = 0

    def close(self) -> None:
        self.state = State.CLOSED
        self.clear()
