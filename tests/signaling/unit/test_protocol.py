"""Request parsing: names, shapes and sizes exactly as the contract says."""

from __future__ import annotations

import json

import pytest

from signaling.errors import InvalidPayload, PayloadTooLarge
from signaling.protocol import (
    JoinRequest,
    RelayRequest,
    SignalRequest,
    json_size,
    parse_request,
)

LIMIT = 1000


def parse(event: str, *args: object) -> object:
    return parse_request(event, list(args), max_relay_bytes=LIMIT)


@pytest.mark.parametrize("room", ["a", "A-z_0.9", "x" * 64, "..", "-"])
def test_valid_room_names(room: str) -> None:
    assert parse("leave", {"room": room}).room == room  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "room", ["", "x" * 65, "a b", "a/b", "é", "a\u0000b", "\u202eabc", None, 5, {}, ["a"]]
)
def test_invalid_room_names(room: object) -> None:
    with pytest.raises(InvalidPayload, match="room"):
        parse("join", {"room": room})


@pytest.mark.parametrize("args", [(), ({"room": "a"}, {"room": "b"}), ("room",), ([],), (None,)])
def test_one_object_argument(args: tuple[object, ...]) -> None:
    with pytest.raises(InvalidPayload, match="one object"):
        parse("join", *args)


def test_unknown_request() -> None:
    with pytest.raises(InvalidPayload, match="unknown request"):
        parse("shout", {"room": "a"})


def test_join_defaults_and_fields() -> None:
    assert parse("join", {"room": "r"}) == JoinRequest("r", {}, True, None)
    got = parse("join", {"room": "r", "meta": {"n": 1}, "webrtc": False, "resume": "t"})
    assert got == JoinRequest("r", {"n": 1}, False, "t")


def test_join_meta_limits() -> None:
    fits = {"k": "x" * (1024 - len('{"k":""}'))}
    assert json_size(fits) == 1024
    assert parse("join", {"room": "r", "meta": fits}).meta == fits  # type: ignore[attr-defined]
    with pytest.raises(PayloadTooLarge):
        parse("join", {"room": "r", "meta": {"k": fits["k"] + "x"}})
    for bad in ([1], "m", 3, b"x", {"b": b"x"}):
        with pytest.raises(InvalidPayload):
            parse("join", {"room": "r", "meta": bad})


@pytest.mark.parametrize("field,value", [("webrtc", "yes"), ("webrtc", 1), ("resume", 5), ("resume", "")])
def test_join_bad_fields(field: str, value: object) -> None:
    with pytest.raises(InvalidPayload, match=field):
        parse("join", {"room": "r", field: value})


def test_signal_shape_and_limit() -> None:
    data = {"type": "offer", "sdp": "v=0"}
    assert parse("signal", {"room": "r", "to": "p", "data": data}) == SignalRequest("r", "p", data)
    big = {"s": "x" * (64 * 1024 - len('{"s":""}') + 1)}
    with pytest.raises(PayloadTooLarge):
        parse("signal", {"room": "r", "to": "p", "data": big})
    for bad in (None, "sdp", 3, [1], {"b": b"\x00"}):
        with pytest.raises(InvalidPayload):
            parse("signal", {"room": "r", "to": "p", "data": bad})
    for to in (None, 5, ["a"], "", {"a": 1}):
        with pytest.raises(InvalidPayload, match="to"):
            parse("signal", {"room": "r", "to": to, "data": {}})


def test_relay_sizes_count_binary_as_its_bytes() -> None:
    exact = bytes(LIMIT)
    got = parse("relay", {"room": "r", "event": "e", "data": exact})
    assert isinstance(got, RelayRequest) and got.size == LIMIT and got.to is None
    with pytest.raises(PayloadTooLarge):
        parse("relay", {"room": "r", "event": "e", "data": bytes(LIMIT + 1)})
    nested = {"a": bytes(10), "b": [bytes(5)]}
    assert json_size(nested) == len('{"a":,"b":[]}') + 15


def test_relay_json_size_is_compact_utf8() -> None:
    value = {"a": [1, 2], "t": "é"}
    assert json_size(value) == len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    assert json_size(10**30) == 31  # beyond 64 bits still measured


@pytest.mark.parametrize("event", ["", "x" * 65, "a\nb", "\u0085", 5, None])
def test_relay_event_names(event: object) -> None:
    with pytest.raises(InvalidPayload, match="event"):
        parse("relay", {"room": "r", "event": event, "data": 1})


def test_relay_needs_data_and_valid_to() -> None:
    with pytest.raises(InvalidPayload, match="data"):
        parse("relay", {"room": "r", "event": "e"})
    assert parse("relay", {"room": "r", "event": "e", "data": None, "to": "p"}).to == "p"  # type: ignore[attr-defined]
    with pytest.raises(InvalidPayload):
        parse("relay", {"room": "r", "event": "e", "data": 1, "to": ["p"]})
