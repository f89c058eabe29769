"""peer.sctp_reassembly: the reassembly walk is skipped only when no message can complete."""

from __future__ import annotations

import random

from aiortc.rtcsctptransport import (
    SCTP_DATA_FIRST_FRAG,
    SCTP_DATA_LAST_FRAG,
    SCTP_DATA_UNORDERED,
    DataChunk,
    InboundStream,
)

from tests.peer.fast_path_support import checked_transfer, loopback_pair


def fragments(tsn: int, seq: int, payload: bytes, size: int, unordered: bool = False) -> list[DataChunk]:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    chunks = []
    for n, part in enumerate(parts):
        chunk = DataChunk()
        chunk.flags = (SCTP_DATA_UNORDERED if unordered else 0) | (
            SCTP_DATA_FIRST_FRAG if n == 0 else 0) | (SCTP_DATA_LAST_FRAG if n == len(parts) - 1 else 0)
        chunk.tsn, chunk.stream_id, chunk.stream_seq, chunk.protocol = tsn + n, 1, seq, 53
        chunk.user_data = part
        chunks.append(chunk)
    return chunks


def feed(chunks: list[DataChunk]) -> list[bytes]:
    stream = InboundStream()
    out = []
    for chunk in chunks:
        stream.add_chunk(chunk)
        out += [data for _, _, data in stream.pop_messages()]
    return out


def test_in_order_shuffled_and_mixed_fragments_give_the_same_messages() -> None:
    rng = random.Random(18)
    payloads = [rng.randbytes(rng.randint(1, 900)) for _ in range(30)]
    chunks: list[DataChunk] = []
    tsn, seq = 1000, 0
    for n, payload in enumerate(payloads):
        unordered = n % 7 == 3
        new = fragments(tsn, 0 if unordered else seq, payload, 64, unordered=unordered)
        chunks += new
        tsn += len(new)
        seq += 0 if unordered else 1
    ordered = [p for s, p in enumerate(payloads) if s % 7 != 3]
    assert [m for m in feed(chunks) if m in ordered] == ordered
    assert sorted(feed(chunks)) == sorted(payloads)
    for seed in range(5):
        shuffled = chunks[:]
        random.Random(seed).shuffle(shuffled)
        got = feed(shuffled)
        assert sorted(got) == sorted(payloads)  # everything, once
        assert [m for m in got if m in ordered] == ordered  # ordered ones in order


def test_the_walk_is_skipped_for_appended_middle_fragments() -> None:
    stream = InboundStream()
    first, middle, last = fragments(5, 0, b"a" * 30, 10)
    stream.add_chunk(first)
    assert list(stream.pop_messages()) == []
    assert stream._rtc_nothing_new is False  # reset by the skipped walk
    stream.add_chunk(middle)
    assert stream._rtc_nothing_new is True
    assert list(stream.pop_messages()) == []
    stream.add_chunk(last)
    assert [m[2] for m in stream.pop_messages()] == [b"a" * 30]


async def test_64_kib_messages_arrive_once_in_order() -> None:
    async with loopback_pair() as pair:
        await checked_transfer(pair, 200)
