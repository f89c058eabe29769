"""Frame encoding against the golden vectors shared with web/test/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peer.constants import DATA_CHANNEL_MESSAGE_BYTES
from peer.errors import FrameError
from peer.framing import (
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    PEER_CHUNK_BYTES,
    RELAY_EVENT,
    Ack,
    FileCancel,
    FileChunk,
    FileEnd,
    FileOffer,
    FileResult,
    Frame,
    MessagePart,
    Sequenced,
    decode_frames,
    encode_frame,
    pack,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "peer-wire.json").read_text("utf-8")
)


def frame_from_vector(o: dict[str, Any]) -> Frame:
    kind = o["kind"]
    if kind == "ack":
        return Ack(o["ack"])
    body: Any
    if kind == "message-part":
        body = MessagePart(
            o["event"], bytes.fromhex(o["payload"]), o["binary"], o["more"],
            o.get("request"), o.get("response"), o.get("error"),
        )
    elif kind == "file-offer":
        body = FileOffer(o["id"], o["name"], o["size"], o["chunkSize"])
    elif kind == "file-chunk":
        body = FileChunk(o["id"], o["index"], bytes.fromhex(o["payload"]))
    elif kind == "file-end":
        body = FileEnd(o["id"], o["sha256"])
    elif kind == "file-result":
        body = FileResult(o["id"], o["ok"], o["sha256"])
    else:
        assert kind == "file-cancel"
        body = FileCancel(o["id"], o["reason"])
    return Sequenced(o["seq"], body)


def test_relay_event_name() -> None:
    assert RELAY_EVENT == VECTORS["relayEvent"] == "rtc-peer.frame"


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_golden_frame_encodes_to_exact_bytes(vector: dict[str, Any]) -> None:
    assert encode_frame(frame_from_vector(vector["frame"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_golden_frame_decodes(vector: dict[str, Any]) -> None:
    assert decode_frames(bytes.fromhex(vector["hex"])) == [frame_from_vector(vector["frame"])]


def test_golden_batch_decodes_in_order() -> None:
    for batch in VECTORS["batches"]:
        frames = decode_frames(bytes.fromhex(batch["hex"]))
        assert frames == [frame_from_vector(o) for o in batch["frames"]]
        assert b"".join(map(encode_frame, frames)).hex() == batch["hex"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_malformed_input_is_refused(vector: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        decode_frames(bytes.fromhex(vector["hex"]))


def test_binary_payload_is_byte_exact() -> None:
    payload = bytes(range(256)) * 64
    frame = Sequenced(3, MessagePart("bin", payload, binary=True))
    (decoded,) = decode_frames(encode_frame(frame))
    assert isinstance(decoded, Sequenced) and isinstance(decoded.body, MessagePart)
    assert decoded.body.payload == payload and decoded.body.binary


def test_header_keys_in_any_order_and_unknown_keys_ignored() -> None:
    header = b'{"future":[1],"event":"a","seq":9}'
    raw = bytes([1, 0, len(header), 0, 0, 0, 1]) + header + b"1"
    assert decode_frames(raw) == [Sequenced(9, MessagePart("a", b"1"))]


def test_payload_limit_is_configurable_on_decode() -> None:
    raw = encode_frame(Sequenced(1, FileChunk("f", 0, b"x" * 100)))
    with pytest.raises(FrameError):
        decode_frames(raw, max_payload=99)


@pytest.mark.parametrize(
    "frame",
    [
        Sequenced(0, MessagePart("a", b"1")),
        Sequenced(1, MessagePart("", b"1")),
        Sequenced(1, MessagePart("a", b"x" * (MAX_PAYLOAD_BYTES + 1), binary=True)),
        Sequenced(1, FileOffer("bad id", "a", 1, 1)),
        Sequenced(1, FileEnd("f", "nothex")),
        Sequenced(1, MessagePart("\ud800", b"1")),
        Ack(-1),
    ],
)
def test_encoder_refuses_what_the_decoder_would(frame: Frame) -> None:
    with pytest.raises(FrameError):
        encode_frame(frame)


def test_pack_groups_frames_up_to_the_limit_in_order() -> None:
    frames = [encode_frame(Ack(i)) for i in range(10)]
    size = len(frames[0])
    messages = pack(frames, 3 * size)
    assert [len(m) for m in messages] == [3 * size, 3 * size, 3 * size, size]
    assert [f for m in messages for f in decode_frames(m)] == [Ack(i) for i in range(10)]
    assert pack([b"x" * 50], 10) == [b"x" * 50]
    assert pack([], 10) == []


def test_a_peer_chunk_with_the_largest_header_fits_one_data_channel_message() -> None:
    # The longest header a Peer writes: 64 four-byte characters of event, every
    # optional key at its largest (or a file chunk with a 64-character id).
    event = "\U0001f600" * 64
    part = MessagePart(event, bytes(PEER_CHUNK_BYTES), True, True, None, MAX_SEQ, "e" * 64)
    request = MessagePart(event, bytes(PEER_CHUNK_BYTES), True, True, MAX_SEQ, None, None)
    chunk = FileChunk("i" * 64, MAX_SEQ, bytes(PEER_CHUNK_BYTES))
    for body in (part, request, chunk):
        encoded = encode_frame(Sequenced(MAX_SEQ, body))
        assert len(encoded) <= DATA_CHANNEL_MESSAGE_BYTES
        assert pack([encoded, encoded], DATA_CHANNEL_MESSAGE_BYTES) == [encoded, encoded]
