"""Parsing and validation of client requests: names, shapes and sizes.

Pure functions over already-decoded Socket.IO arguments. Each request
parses into a frozen dataclass or raises the matching ``SignalingError``;
nothing here touches state.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import InvalidPayload, PayloadTooLarge

ROOM_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_EVENT_NAME = 64
MAX_META_BYTES = 1024
MAX_SIGNAL_BYTES = 64 * 1024
MAX_RESUME_TOKEN = 256
MAX_PEER_ID = 128

REQUEST_EVENTS = frozenset({"join", "leave", "signal", "relay", "update", "ice-servers"})


def json_size(value: object) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON, binary counted as its own length."""
    return measure(value)[0]


def measure(value: object) -> tuple[int, bool]:
    """``json_size(value)``, and whether ``value`` holds any binary."""
    binary_total = 0
    binary_count = 0

    def count_binary(obj: Any) -> None:
        nonlocal binary_total, binary_count
        if isinstance(obj, (bytes, bytearray, memoryview)):
            binary_total += len(obj)
            binary_count += 1
            return
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")

    try:
        text = orjson.dumps(value, default=count_binary)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits; the stdlib does not.
        binary_total = binary_count = 0
        try:
            text = json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, default=count_binary
            ).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidPayload(f"data is not a JSON value: {exc}") from None
    # Each binary value was written as ``null`` (4 bytes) in its place.
    return len(text) - 4 * binary_count + binary_total, binary_count > 0


def room_name(value: object, field: str = "room") -> str:
    if not isinstance(value, str) or not ROOM_PATTERN.fullmatch(value):
        raise InvalidPayload(
            f"{field} must be 1-64 characters of A-Z a-z 0-9 _ . - (got {_show(value)})"
        )
    return value


def event_name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EVENT_NAME:
        raise InvalidPayload(f"event must be a string of 1-64 characters (got {_show(value)})")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidPayload("event must not contain control characters")
    return value


def peer_id(value: object, field: str = "to") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PEER_ID:
        raise InvalidPayload(f"{field} must be a peerId string (got {_show(value)})")
    return value


@dataclass(frozen=True, slots=True)
class JoinRequest:
    room: str
    meta: dict[str, Any]
    webrtc: bool
    resume: str | None


@dataclass(frozen=True, slots=True)
class LeaveRequest:
    room: str


@dataclass(frozen=True, slots=True)
class SignalRequest:
    room: str
    to: str
    data: dict[str, Any]
    size: int = field(default=0, compare=False)  # of data as JSON: derived, measured once


@dataclass(frozen=True, slots=True)
class RelayRequest:
    room: str
    event: str
    data: Any
    to: str | None
    size: int
    binary: bool = False


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """v1.1: replace this peer's meta in one room."""

    room: str
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IceServersRequest:
    """v1.1: fresh ``iceServers`` (TURN credentials minted now)."""


Request = (
    JoinRequest | LeaveRequest | SignalRequest | RelayRequest | UpdateRequest | IceServersRequest
)


def parse_request(event: str, args: list[Any], *, max_relay_bytes: int) -> Request:
    """Parse the arguments of one request event (ack callback excluded)."""
    if event not in REQUEST_EVENTS:
        raise InvalidPayload(
            f"unknown request {_show(event)}: expected one of "
            "join, leave, signal, relay, update, ice-servers"
        )
    if len(args) != 1 or not isinstance(args[0], dict):
        raise InvalidPayload(f"{event} takes exactly one object argument")
    body: dict[str, Any] = args[0]
    if event == "join":
        return _parse_join(body)
    if event == "leave":
        return LeaveRequest(room=room_name(body.get("room")))
    if event == "signal":
        return _parse_signal(body)
    if event == "update":
        if "meta" not in body:
            raise InvalidPayload("update needs meta (a JSON object, at most 1 KiB as JSON)")
        return UpdateRequest(room=room_name(body.get("room")), meta=_parse_meta(body["meta"]))
    if event == "ice-servers":
        return IceServersRequest()
    return _parse_relay(body, max_relay_bytes)


def _parse_join(body: dict[str, Any]) -> JoinRequest:
    room = room_name(body.get("room"))
    meta = _parse_meta(body.get("meta"))
    webrtc = body.get("webrtc", True)
    if not isinstance(webrtc, bool):
        raise InvalidPayload("webrtc must be a boolean")
    resume = body.get("resume")
    if resume is not None and (
        not isinstance(resume, str) or not 1 <= len(resume) <= MAX_RESUME_TOKEN
    ):
        raise InvalidPayload("resume must be the resumeToken string from an earlier join")
    return JoinRequest(room=room, meta=meta, webrtc=webrtc, resume=resume)


def _parse_meta(meta: object) -> dict[str, Any]:
    """A peer's meta, as ``join`` and ``update`` take it: absent or null is ``{}``."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InvalidPayload("meta must be a JSON object")
    size, binary = measure(meta)
    if binary:
        raise InvalidPayload("meta must be JSON, not binary")
    if size > MAX_META_BYTES:
        raise PayloadTooLarge(f"meta is larger than {MAX_META_BYTES} bytes as JSON")
    return meta


def _parse_signal(body: dict[str, Any]) -> SignalRequest:
    room = room_name(body.get("room"))
    to = peer_id(body.get("to"))
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidPayload("signal data must be a JSON object")
    size, binary = measure(data)
    if binary:
        raise InvalidPayload("signal data must be JSON, not binary")
    if size > MAX_SIGNAL_BYTES:
        raise PayloadTooLarge(f"signal data is larger than {MAX_SIGNAL_BYTES} bytes as JSON")
    return SignalRequest(room=room, to=to, data=data, size=size)


def _parse_relay(body: dict[str, Any], max_relay_bytes: int) -> RelayRequest:
    room = room_name(body.get("room"))
    event = event_name(body.get("event"))
    if "data" not in body:
        raise InvalidPayload("relay needs data (any JSON value or binary)")
    data = body["data"]
    to = body.get("to")
    if to is not None:
        to = peer_id(to)
    size, binary = measure(data)
    if size > max_relay_bytes:
        raise PayloadTooLarge(f"relay data is {size} bytes, over the limit of {max_relay_bytes}")
    return RelayRequest(room=room, event=event, data=data, to=to, size=size, binary=binary)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
