"""The frame format both peers speak, on a data channel and through the relay.

Every frame is, big-endian::

    type u8 | header_len u16 | payload_len u32 | header | payload

``header`` is a compact UTF-8 JSON object, ``payload`` raw bytes. A frame is
self-delimiting, so one data-channel message, or the binary ``data`` of one
server ``relay`` request with event :data:`RELAY_EVENT`, carries one or more
whole frames back to back (:func:`pack` groups them).

Frames are an :class:`Ack` or a :class:`Sequenced` frame whose ``body`` is a
:class:`MessagePart` or one of the file-transfer bodies. The decoder accepts
the header keys in any order and ignores unknown ones; the encoder writes them
in the documented order, so both implementations produce the same bytes.
See ``docs/peer-wire.md``.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from .errors import FrameError

RELAY_EVENT = "rtc-peer.frame"
"""The relay event name that carries frames through the signaling server."""

MESSAGE_JSON = 0x01
MESSAGE_BINARY = 0x02
ACK = 0x03
DATAGRAM_JSON = 0x04
DATAGRAM_BINARY = 0x05
FILE_OFFER = 0x10
FILE_CHUNK = 0x11
FILE_END = 0x12
FILE_RESULT = 0x13
FILE_CANCEL = 0x14

PREFIX_BYTES = 7
MAX_HEADER_BYTES = 4096
MAX_PAYLOAD_BYTES = 65536
DEFAULT_CHUNK_BYTES = 16384
"""Message fragments and file chunks: small enough for any data channel."""
PEER_CHUNK_BYTES = 65536 - 1024
"""What :class:`peer.Peer` cuts messages and files into: the largest part whose frame,
with any header the peer writes (well under 1 KiB), still fits one 64 KiB data-channel
message, so a 64 KiB message is two frames instead of four, a file 4x fewer chunks."""
MAX_DATAGRAM_BYTES = 65536
"""A datagram is one data-channel message: what every WebRTC stack accepts."""
MAX_SEQ = 2**53 - 1
"""Largest integer both JSON implementations hold exactly."""
MAX_NAME_CHARS = 255
MAX_REASON_CHARS = 256

_PREFIX = struct.Struct(">BHI")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every header: ``json.dumps`` with options builds a new one per call."""
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_ERROR_CODE = re.compile(r"[a-z0-9-]{1,64}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One fragment of an application message; ``more`` says others follow.

    A request carries ``request`` (its id, from 1, per sender); the answer to
    it carries ``response`` (the same id) and, when it failed, ``error`` (a
    RequestError code; the payload is then the JSON text of a message).
    Every fragment of one message carries the same keys.
    """

    event: str
    payload: bytes
    binary: bool = False
    more: bool = False
    request: int | None = None
    response: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FileOffer:
    id: str
    name: str
    size: int
    chunk_size: int


@dataclass(frozen=True, slots=True)
class FileChunk:
    id: str
    index: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class FileEnd:
    """The sender's SHA-256 of the whole file, sent after the last chunk."""

    id: str
    sha256: str


@dataclass(frozen=True, slots=True)
class FileResult:
    """The receiver's verdict: ``ok`` and the digest it computed."""

    id: str
    ok: bool
    sha256: str


@dataclass(frozen=True, slots=True)
class FileCancel:
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Datagram:
    """A lossy, unordered message (``emit(..., reliable=False)``): outside any session.

    It travels alone in one message of the lossy data channel, is never
    fragmented, acked or resent, and is never sent through the server.
    """

    event: str
    payload: bytes
    binary: bool = False


FileBody: TypeAlias = FileOffer | FileChunk | FileEnd | FileResult | FileCancel
Body: TypeAlias = MessagePart | FileBody


@dataclass(frozen=True, slots=True)
class Sequenced:
    """A body with its place in the session's stream (``seq`` from 1)."""

    seq: int
    body: Body


@dataclass(frozen=True, slots=True)
class Ack:
    """Cumulative: every ``seq`` up to and including ``ack`` has arrived."""

    ack: int


Frame: TypeAlias = Sequenced | Ack


def encode_frame(frame: Frame) -> bytes:
    """Encode one frame; raises FrameError for a frame the decoder would refuse."""
    kind, header, payload = _to_wire(frame)
    try:
        raw = _ENCODER.encode(header).encode()
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError: lone surrogates
        raise FrameError(f"header cannot be encoded: {exc}") from None
    if len(raw) > MAX_HEADER_BYTES or len(payload) > MAX_PAYLOAD_BYTES:
        raise FrameError("frame header or payload over the size limits")
    # What decode_frames would check of this frame, without copying the payload back.
    _from_wire(kind, _parse_header(memoryview(raw)), payload)
    return b"".join((_PREFIX.pack(kind, len(raw), len(payload)), raw, payload))


def decode_frames(data: bytes, *, max_payload: int = MAX_PAYLOAD_BYTES) -> list[Frame]:
    """Decode one or more frames laid back to back; all or nothing."""
    view = memoryview(data)
    if not view:
        raise FrameError("empty message")
    frames: list[Frame] = []
    pos = 0
    while pos < len(view):
        if len(view) - pos < PREFIX_BYTES:
            raise FrameError("truncated frame prefix")
        kind, header_len, payload_len = _PREFIX.unpack_from(view, pos)
        if header_len > MAX_HEADER_BYTES:
            raise FrameError(f"header of {header_len} bytes over {MAX_HEADER_BYTES}")
        if payload_len > max_payload:
            raise FrameError(f"payload of {payload_len} bytes over {max_payload}")
        start = pos + PREFIX_BYTES
        end = start + header_len + payload_len
        if end > len(view):
            raise FrameError("truncated frame")
        header = _parse_header(view[start : start + header_len])
        frames.append(_from_wire(kind, header, bytes(view[start + header_len : end])))
        pos = end
    return frames


def encode_datagram(datagram: Datagram) -> bytes:
    """One lossy-channel message; raises FrameError for a bad event or one over the size limit."""
    kind = DATAGRAM_BINARY if datagram.binary else DATAGRAM_JSON
    raw = _ENCODER.encode({"event": datagram.event}).encode()
    encoded = _PREFIX.pack(kind, len(raw), len(datagram.payload)) + raw + datagram.payload
    decode_datagram(encoded)
    return encoded


def decode_datagram(data: bytes) -> Datagram:
    """Inverse of :func:`encode_datagram`: exactly one datagram frame."""
    if len(data) < PREFIX_BYTES:
        raise FrameError("truncated datagram")
    kind, header_len, payload_len = _PREFIX.unpack_from(data, 0)
    if kind not in (DATAGRAM_JSON, DATAGRAM_BINARY):
        raise FrameError(f"not a datagram (type 0x{kind:02x})")
    if header_len > MAX_HEADER_BYTES or PREFIX_BYTES + header_len + payload_len != len(data):
        raise FrameError("datagram length mismatch")
    if len(data) > MAX_DATAGRAM_BYTES:
        raise FrameError(f"datagram over {MAX_DATAGRAM_BYTES} bytes")
    head = _parse_header(memoryview(data)[PREFIX_BYTES : PREFIX_BYTES + header_len])
    return Datagram(_event(head), bytes(data[PREFIX_BYTES + header_len :]), kind == DATAGRAM_BINARY)


def pack(frames: Iterable[bytes], limit: int) -> list[bytes]:
    """Group encoded frames, in order, into messages of at most ``limit`` bytes.

    A frame longer than ``limit`` travels alone.
    """
    messages: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for frame in frames:
        if batch and size + len(frame) > limit:
            messages.append(b"".join(batch))
            batch, size = [], 0
        batch.append(frame)
        size += len(frame)
    if batch:
        messages.append(b"".join(batch))
    return messages


def _to_wire(frame: Frame) -> tuple[int, dict[str, Any], bytes]:
    if isinstance(frame, Ack):
        return ACK, {"ack": frame.ack}, b""
    head: dict[str, Any] = {"seq": frame.seq}
    body = frame.body
    if isinstance(body, MessagePart):
        head["event"] = body.event
        if body.request is not None:
            head["request"] = body.request
        if body.response is not None:
            head["response"] = body.response
        if body.error is not None:
            head["error"] = body.error
        if body.more:
            head["more"] = True
        return (MESSAGE_BINARY if body.binary else MESSAGE_JSON), head, body.payload
    head["id"] = body.id
    if isinstance(body, FileOffer):
        head.update(name=body.name, size=body.size, chunkSize=body.chunk_size)
        return FILE_OFFER, head, b""
    if isinstance(body, FileChunk):
        head["index"] = body.index
        return FILE_CHUNK, head, body.payload
    if isinstance(body, FileEnd):
        head["sha256"] = body.sha256
        return FILE_END, head, b""
    if isinstance(body, FileResult):
        head.update(ok=body.ok, sha256=body.sha256)
        return FILE_RESULT, head, b""
    head["reason"] = body.reason
    return FILE_CANCEL, head, b""


def _parse_header(raw: memoryview) -> Mapping[str, Any]:
    try:
        header = _DECODER.decode(bytes(raw).decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("header is not a JSON object")
    return header


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
"""One decoder for every header: ``json.loads`` with options builds a new one per call."""


def _from_wire(kind: int, head: Mapping[str, Any], payload: bytes) -> Frame:
    if kind == ACK:
        _no_payload(kind, payload)
        return Ack(_int(head, "ack", 0, MAX_SEQ))
    seq = _int(head, "seq", 1, MAX_SEQ)
    body: Body
    if kind in (MESSAGE_JSON, MESSAGE_BINARY):
        more = head.get("more", False)
        if not isinstance(more, bool):
            raise FrameError("'more' must be a boolean")
        request = _optional_int(head, "request")
        response = _optional_int(head, "response")
        error = head.get("error")
        if request is not None and response is not None:
            raise FrameError("a message is a request or a response, not both")
        if error is not None and (
            response is None or not isinstance(error, str) or not _ERROR_CODE.match(error)
        ):
            raise FrameError("'error' must be a code of 1-64 of a-z 0-9 -, on a response only")
        body = MessagePart(
            _event(head), payload, kind == MESSAGE_BINARY, more, request, response, error
        )
        return Sequenced(seq, body)
    file_id = _str(head, "id")
    if not _FILE_ID.match(file_id):
        raise FrameError("file 'id' must be 1-64 of A-Z a-z 0-9 _ -")
    if kind == FILE_CHUNK:
        return Sequenced(seq, FileChunk(file_id, _int(head, "index", 0, MAX_SEQ), payload))
    _no_payload(kind, payload)
    if kind == FILE_OFFER:
        name = _str(head, "name")
        if not 1 <= len(name) <= MAX_NAME_CHARS or _CONTROL.search(name):
            raise FrameError("file 'name' must be 1-255 characters, no control characters")
        size = _int(head, "size", 0, MAX_SEQ)
        body = FileOffer(file_id, name, size, _int(head, "chunkSize", 1, MAX_PAYLOAD_BYTES))
    elif kind == FILE_END:
        body = FileEnd(file_id, _sha256(head))
    elif kind == FILE_RESULT:
        ok = head.get("ok")
        if not isinstance(ok, bool):
            raise FrameError("'ok' must be a boolean")
        body = FileResult(file_id, ok, _sha256(head))
    elif kind == FILE_CANCEL:
        reason = _str(head, "reason")
        if len(reason) > MAX_REASON_CHARS:
            raise FrameError(f"'reason' over {MAX_REASON_CHARS} characters")
        body = FileCancel(file_id, reason)
    else:
        raise FrameError(f"unknown frame type 0x{kind:02x}")
    return Sequenced(seq, body)


def _no_payload(kind: int, payload: bytes) -> None:
    if payload:
        raise FrameError(f"frame type 0x{kind:02x} carries no payload")


def _int(head: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = head.get(key)
    if type(value) is not int or not low <= value <= high:
        raise FrameError(f"{key!r} must be an integer in {low}..{high}")
    return value


def _optional_int(head: Mapping[str, Any], key: str) -> int | None:
    return None if head.get(key) is None else _int(head, key, 1, MAX_SEQ)


def _str(head: Mapping[str, Any], key: str) -> str:
    value = head.get(key)
    if not isinstance(value, str):
        raise FrameError(f"{key!r} must be a string")
    return value


def _event(head: Mapping[str, Any]) -> str:
    event = _str(head, "event")
    if not 1 <= len(event) <= 64 or _CONTROL.search(event):
        raise FrameError("'event' must be 1-64 characters, no control characters")
    return event


def _sha256(head: Mapping[str, Any]) -> str:
    digest = _str(head, "sha256")
    if not _SHA256.match(digest):
        raise FrameError("'sha256' must be 64 lowercase hex digits")
    return digest
