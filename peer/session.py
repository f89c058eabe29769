"""An ordered, exactly-once stream to one remote peer over a switchable path.

Sans-I/O: the session never sends, reads or looks at a clock. The owner:

- calls :meth:`Session.send_message` / :meth:`Session.send` and writes the
  returned encoded frames to the current path (data channel or relay);
- feeds every message that arrives from the remote peer, on any path, to
  :meth:`Session.receive` and hands the returned deliveries to the app;
- after each ``receive`` and whenever :meth:`Session.next_deadline` passes,
  writes what :meth:`Session.poll` returns (acks, retransmissions);
- on a path switch (relay to data channel or back, or a signaling resume)
  writes what :meth:`Session.resend` returns on the new path.

Rules: ``seq`` starts at 1 and grows by one per sequenced frame. Acks are
cumulative. The sender keeps every unacked frame (bounded by
``max_buffered_bytes``: :class:`SendBufferFull` is the backpressure signal)
and resends them all on a path switch or when no ack made progress for
``retransmit_after`` seconds (doubling up to ``MAX_RETRANSMIT_AFTER``). The
receiver delivers in order, holds out-of-order frames up to
``max_reorder_frames`` ahead and ``max_buffered_bytes`` in all (drops the
rest, which come back by resend) and drops duplicates.

Receive window (optional: ``max_unhandled_messages``/``max_unhandled_bytes``):
the owner reports each delivered :class:`Message` as handled with
:meth:`Session.handled`. While that many messages (or bytes of them) are
delivered and not yet handled, the next frames are held, in order, undelivered
and *unacked*, within the same bounds as out-of-order ones; so the sender's
send buffer fills and it waits (:class:`SendBufferFull`), whatever path the
frames take. :meth:`Session.release` delivers what then fits. A message always
goes when nothing is unhandled, so any message can pass.

Ack policy: an ack goes out once ``ack_every`` new frames arrived in order, or
``ack_delay`` seconds after the first frame not yet acked, and at once after a
duplicate or out-of-order frame (a sign the sender resent or lost something).

A remote peer that resumes keeps its peerId: keep its session and call
``resend``. One that comes back with a new peerId is a new peer: start a new
session for it and drop the old one (its unacked frames are lost with it).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TypeAlias

from .errors import FrameError, MessageTooLarge, SendBufferFull, SessionError
from .framing import (
    DEFAULT_CHUNK_BYTES,
    Ack,
    FileBody,
    FileCancel,
    FileChunk,
    FileEnd,
    FileOffer,
    FileResult,
    MessagePart,
    Sequenced,
    decode_frames,
    encode_frame,
)

JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest message payload (JSON text or bytes) a receiver reassembles."""
MAX_RETRANSMIT_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class Message:
    """An application message, whole: ``data`` is a JSON value or bytes.

    ``request``/``response``/``error``: see :class:`~peer.framing.MessagePart`.
    """

    event: str
    data: JsonValue | bytes
    request: int | None = None
    response: int | None = None
    error: str | None = None
    size: int = field(default=0, compare=False)
    """Bytes of its payload: what :meth:`Session.handled` is told back."""


Delivery: TypeAlias = Message | FileOffer | FileChunk | FileEnd | FileResult | FileCancel


def encode_data(data: JsonValue | bytes | bytearray | memoryview) -> tuple[bytes, bool]:
    """The payload bytes of ``data`` and whether it is binary."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), True
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode(), False
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data is neither bytes nor a JSON value: {exc}") from None


def decode_data(payload: bytes, binary: bool) -> JsonValue | bytes:
    """Inverse of :func:`encode_data`; raises FrameError on bad JSON."""
    if binary:
        return payload
    try:
        value: JsonValue = json.loads(payload.decode(), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"message data is not JSON: {exc}") from None
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class Session:
    """One direction-pair of the exactly-once stream to one remote peer."""

    def __init__(
        self,
        *,
        fragment_bytes: int = DEFAULT_CHUNK_BYTES,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_buffered_bytes: int = 2 * MAX_MESSAGE_BYTES,
        max_reorder_frames: int = 1024,
        ack_every: int = 16,
        ack_delay: float = 0.01,
        retransmit_after: float = 2.0,
        max_unhandled_messages: int | None = None,
        max_unhandled_bytes: int | None = None,
    ) -> None:
        if max_message_bytes > max_buffered_bytes:
            raise ValueError("max_message_bytes must fit in max_buffered_bytes")
        self.fragment_bytes = fragment_bytes
        self.max_message_bytes = max_message_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.max_reorder_frames = max_reorder_frames
        self.ack_every = ack_every
        self.ack_delay = ack_delay
        self.retransmit_after = retransmit_after
        self.max_unhandled_messages = max_unhandled_messages
        self.max_unhandled_bytes = max_unhandled_bytes
        # sending
        self._next_seq = 1
        self._unacked: OrderedDict[int, bytes] = OrderedDict()
        self._buffered = 0
        self._rto = retransmit_after
        self._retransmit_at: float | None = None
        # receiving
        self._delivered = 0
        self._early: dict[int, Sequenced] = {}
        self._early_bytes = 0
        self._pending_ack = 0
        self._ack_at: float | None = None
        self._parts: list[MessagePart] = []
        self._parts_bytes = 0
        self._unhandled = 0
        self._unhandled_bytes = 0
        self._failed: SessionError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes of encoded frames sent and not yet acked."""
        return self._buffered

    @property
    def unacked(self) -> int:
        """Number of frames sent and not yet acked."""
        return len(self._unacked)

    @property
    def delivered(self) -> int:
        """Highest seq delivered in order (what the next ack acknowledges)."""
        return self._delivered

    @property
    def unhandled(self) -> tuple[int, int]:
        """Messages delivered and not yet :meth:`handled`: (count, payload bytes)."""
        return self._unhandled, self._unhandled_bytes

    @property
    def holding(self) -> bool:
        """Whether the next frame in order is here, held for want of room."""
        return self._delivered + 1 in self._early

    def handled(self, size: int) -> None:
        """The owner is done with one delivered message of ``size`` payload bytes.

        Then :meth:`release` delivers what was held, if it now fits.
        """
        self._unhandled = max(0, self._unhandled - 1)
        self._unhandled_bytes = max(0, self._unhandled_bytes - size)

    def release(self, now: float) -> list[Delivery]:
        """Deliver the frames held in order that fit now (acks follow by ``poll``)."""
        self._check()
        out: list[Delivery] = []
        before = self._delivered
        self._deliver_held(out)
        if self._delivered != before:
            self._schedule_ack(now)
        return out

    def send_message(
        self,
        event: str,
        data: JsonValue | bytes,
        now: float,
        *,
        request: int | None = None,
        response: int | None = None,
        error: str | None = None,
    ) -> list[bytes]:
        """Sequence one application message (fragmented as needed).

        Returns the encoded frames to write. Raises MessageTooLarge,
        SendBufferFull (nothing queued) or ValueError for data that is
        neither bytes nor JSON. ``request``/``response``/``error`` mark a
        request or its answer (see :class:`~peer.framing.MessagePart`).
        """
        payload, binary = encode_data(data)
        if len(payload) > self.max_message_bytes:
            raise MessageTooLarge(f"{len(payload)} bytes over {self.max_message_bytes}")
        step = self.fragment_bytes
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        last = len(pieces) - 1
        bodies = [
            MessagePart(event, p, binary, i < last, request, response, error)
            for i, p in enumerate(pieces)
        ]
        return self._sequence(bodies, now)

    def send(self, body: FileBody, now: float) -> bytes:
        """Sequence one file-transfer body; returns its encoded frame."""
        return self._sequence([body], now)[0]

    def resend(self, now: float) -> list[bytes]:
        """Everything the new path needs: an ack of what arrived, then all unacked."""
        self._check()
        frames = [encode_frame(Ack(self._delivered))] if self._delivered else []
        self._pending_ack, self._ack_at = 0, None
        frames.extend(self._unacked.values())
        self._rto = self.retransmit_after
        self._retransmit_at = now + self._rto if self._unacked else None
        return frames

    def receive(self, data: bytes, now: float) -> list[Delivery]:
        """Process one incoming message (one or more frames) from any path.

        Raises FrameError (nothing applied; drop the message) or SessionError
        (the remote broke the rules; the session is dead).
        """
        self._check()
        frames = decode_frames(data)
        for frame in frames:
            if isinstance(frame, Ack) and frame.ack >= self._next_seq:
                self._fail(f"ack {frame.ack} of a seq never sent")
        deliveries: list[Delivery] = []
        for frame in frames:
            if isinstance(frame, Ack):
                self._on_ack(frame.ack, now)
            else:
                self._on_sequenced(frame, now, deliveries)
        return deliveries

    def poll(self, now: float) -> list[bytes]:
        """Frames that are due at ``now``: an ack, or a go-back-N retransmission."""
        self._check()
        frames: list[bytes] = []
        if self._ack_at is not None and now >= self._ack_at:
            frames.append(encode_frame(Ack(self._delivered)))
            self._pending_ack, self._ack_at = 0, None
        if self._retransmit_at is not None and now >= self._retransmit_at:
            frames.extend(self._unacked.values())
            self._rto = min(self._rto * 2, MAX_RETRANSMIT_AFTER)
            self._retransmit_at = now + self._rto
        return frames

    def next_deadline(self) -> float | None:
        """When ``poll`` next has something to do, or None."""
        times = [t for t in (self._ack_at, self._retransmit_at) if t is not None]
        return min(times) if times else None

    def _sequence(self, bodies: list[MessagePart] | list[FileBody], now: float) -> list[bytes]:
        self._check()
        seq = self._next_seq
        frames = [encode_frame(Sequenced(seq + i, body)) for i, body in enumerate(bodies)]
        size = sum(map(len, frames))
        if self._unacked and self._buffered + size > self.max_buffered_bytes:
            raise SendBufferFull(f"{self._buffered} bytes unacked, {size} more do not fit")
        for i, frame in enumerate(frames):
            self._unacked[seq + i] = frame
        self._next_seq = seq + len(frames)
        self._buffered += size
        if self._retransmit_at is None:
            self._retransmit_at = now + self._rto
        return frames

    def _on_ack(self, ack: int, now: float) -> None:
        progressed = False
        while self._unacked:
            seq = next(iter(self._unacked))
            if seq > ack:
                break
            self._buffered -= len(self._unacked.pop(seq))
            progressed = True
        if progressed:
            self._rto = self.retransmit_after
            self._retransmit_at = now + self._rto if self._unacked else None

    def _on_sequenced(self, frame: Sequenced, now: float, out: list[Delivery]) -> None:
        seq = frame.seq
        if seq <= self._delivered or seq - self._delivered > self.max_reorder_frames:
            self._ack_at = now  # duplicate, or too far ahead to hold: tell the sender
            return
        if seq > self._delivered + 1 or not self._fits(frame):
            size = _payload_bytes(frame)
            if seq not in self._early and self._early_bytes + size <= self.max_buffered_bytes:
                self._early[seq] = frame
                self._early_bytes += size
            if not self.holding:
                self._ack_at = now  # a gap: the sender lost or resent something
            return
        self._deliver(frame, out)
        self._deliver_held(out)
        self._schedule_ack(now)

    def _schedule_ack(self, now: float) -> None:
        if self._pending_ack >= self.ack_every:
            self._ack_at = now
        elif self._ack_at is None:
            self._ack_at = now + self.ack_delay

    def _deliver_held(self, out: list[Delivery]) -> None:
        while self._delivered + 1 in self._early and self._fits(self._early[self._delivered + 1]):
            early = self._early.pop(self._delivered + 1)
            self._early_bytes -= _payload_bytes(early)
            self._deliver(early, out)

    def _fits(self, frame: Sequenced) -> bool:
        """Whether the receive window lets this in-order frame be delivered now."""
        count, limit = self.max_unhandled_messages, self.max_unhandled_bytes
        if self._unhandled == 0 or (count is None and limit is None):
            return True
        if count is not None and self._unhandled >= count:
            return False
        if limit is None:
            return True
        body = frame.body
        extra = self._parts_bytes + len(body.payload) if isinstance(body, MessagePart) else 0
        return self._unhandled_bytes + extra <= limit

    def _deliver(self, frame: Sequenced, out: list[Delivery]) -> None:
        self._delivered = frame.seq
        self._pending_ack += 1
        body = frame.body
        if not isinstance(body, MessagePart):
            if self._parts:
                self._fail("file frame inside a fragmented message")
            out.append(body)
            return
        first = self._parts[0] if self._parts else body
        if _kind(body) != _kind(first):
            self._fail("message fragments disagree on event, type or request")
        self._parts_bytes += len(body.payload)
        if self._parts_bytes > self.max_message_bytes:
            self._fail(f"message over {self.max_message_bytes} bytes")
        if body.more:
            self._parts.append(body)
            return
        payload = b"".join([p.payload for p in self._parts] + [body.payload])
        self._parts, self._parts_bytes = [], 0
        try:
            data = decode_data(payload, body.binary)
            out.append(Message(body.event, data, body.request, body.response, body.error, len(payload)))
            self._unhandled += 1
            self._unhandled_bytes += len(payload)
        except FrameError as exc:
            self._fail(str(exc))

    def _fail(self, reason: str) -> None:
        self._failed = SessionError(reason)
        raise self._failed

    def _check(self) -> None:
        if self._failed is not None:
            raise SessionError(f"session failed earlier: {self._failed}")


def _kind(part: MessagePart) -> tuple[str, bool, int | None, int | None, str | None]:
    return (part.event, part.binary, part.request, part.response, part.error)


def _payload_bytes(frame: Sequenced) -> int:
    body = frame.body
    return len(body.payload) if isinstance(body, (MessagePart, FileChunk)) else 0
