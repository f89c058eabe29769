"""The coalescing frame writer: RFC 6455 headers, one write per loop turn, the overflow bound."""

from __future__ import annotations

import asyncio

import pytest

from signaling.frame_writer import BINARY, TEXT, FrameWriter, frame_header


class FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


def parse_frames(data: bytes) -> list[tuple[str, bytes]]:
    """Decode unmasked final frames by RFC 6455 5.2, independently of the code under test."""
    frames = []
    at = 0
    while at < len(data):
        first, second = data[at], data[at + 1]
        assert first & 0xF0 == 0x80 and second & 0x80 == 0  # FIN, no RSV, not masked
        size, at = second & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(data[at:at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(data[at:at + 8], "big"), at + 8
        kind = {1: "text", 2: "binary"}[first & 0x0F]
        frames.append((kind, data[at:at + size]))
        at += size
    assert at == len(data)
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_header_lengths_follow_rfc6455(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frames = parse_frames(frame_header(size, BINARY) + payload)
    assert frames == [("binary", payload)]
    assert len(frame_header(size, TEXT)) == (2 if size < 126 else 4 if size < 65536 else 10)


async def test_frames_of_one_turn_go_out_in_one_write_in_order() -> None:
    transport = FakeTransport()
    writer = FrameWriter(transport, 1 << 20, lambda waiting: None)  # type: ignore[arg-type]
    writer.write(b"4first", TEXT)
    writer.write(b"\x00\x01", BINARY)
    writer.write(b"4third", TEXT)
    assert transport.writes == []
    await asyncio.sleep(0)  # one loop turn
    assert len(transport.writes) == 1
    assert parse_frames(transport.writes[0]) == [
        ("text", b"4first"), ("binary", b"\x00\x01"), ("text", b"4third"),
    ]
    writer.write(b"4later", TEXT)
    writer.flush()
    assert parse_frames(transport.writes[1]) == [("text", b"4later")]
    await asyncio.sleep(0)
    assert len(transport.writes) == 2  # the scheduled flush found nothing left


async def test_overflow_is_reported_with_the_bytes_waiting() -> None:
    transport = FakeTransport(buffered=5000)
    seen: list[int] = []
    writer = FrameWriter(transport, 4096, seen.append)  # type: ignore[arg-type]
    writer.write(b"4x", TEXT)
    writer.flush()
    assert seen == [5000]


async def test_discarded_or_closing_writes_nothing() -> None:
    transport = FakeTransport()
    writer = FrameWriter(transport, 1 << 20, lambda waiting: None)  # type: ignore[arg-type]
    writer.write(b"4gone", TEXT)
    writer.discard()
    writer.flush()
    transport.closing = True
    writer.write(b"4late", TEXT)
    writer.flush()
    assert transport.writes == []


async def test_an_encoded_packet_is_a_text_frame_when_text_and_binary_when_bytes() -> None:
    transport = FakeTransport()
    writer = FrameWriter(transport, 1 << 20, lambda waiting: None)  # type: ignore[arg-type]
    writer.write_packet("42[\"é\"]")
    writer.write_packet(b"\x00\xff")
    writer.flush()
    assert parse_frames(transport.writes[0]) == [("text", '42["é"]'.encode()), ("binary", b"\x00\xff")]
