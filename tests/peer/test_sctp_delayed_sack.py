"""peer.sctp_delayed_sack: a SACK per two packets, within the delay, at once after a gap."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiortc.rtcsctptransport import DataChunk, SackChunk

from peer import sctp_delayed_sack
from tests.peer.fast_path_support import checked_transfer, loopback_pair
from tests.reliability.support import WAIT, LossyLink, until


def count_chunks(transport: Any, sent: Counter[str], received: Counter[str]) -> None:
    """Count the chunk types ``transport`` (an RTCSctpTransport) sends and receives."""
    send_chunk, receive_chunk = transport._send_chunk, transport._receive_chunk

    async def counting_send(chunk: Any) -> None:
        sent[type(chunk).__name__] += 1
        await send_chunk(chunk)

    async def counting_receive(chunk: Any) -> None:
        received[type(chunk).__name__] += 1
        await receive_chunk(chunk)

    transport._send_chunk, transport._receive_chunk = counting_send, counting_receive


async def test_one_sack_per_two_data_packets_and_everything_arrives_in_order() -> None:
    async with loopback_pair() as pair:
        sent: Counter[str] = Counter()
        received: Counter[str] = Counter()
        count_chunks(pair.answerer.sctp, sent, received)
        await checked_transfer(pair, 400)  # 25 MiB, ~22,000 DATA chunks
        data, sacks = received[DataChunk.__name__], sent[SackChunk.__name__]
        assert data > 20_000
        # Every second packet, plus the timer's and the immediate ones: far below one each.
        assert data / 2 <= sacks + 1 < 0.6 * data, (data, sacks)


async def test_a_lone_packet_is_acknowledged_by_the_timer() -> None:
    async with loopback_pair() as pair:
        receiver = pair.answerer.sctp
        sender = pair.offerer.sctp
        await checked_transfer(pair, 4, size=512)  # past the first, immediate SACK
        await until(lambda: not sender._sent_queue)
        sent: Counter[str] = Counter()
        count_chunks(receiver, sent, Counter())
        # What the receiver owes right after answering the lone packet: read there, not
        # polled, since under load the timer may already have paid it by the next poll.
        after_data: list[tuple[bool, int]] = []
        send_sack = receiver._send_sack

        async def observing_send_sack() -> None:
            await send_sack()
            after_data.append((receiver._rtc_sack_delay.owed, sent[SackChunk.__name__]))

        receiver._send_sack = observing_send_sack
        pair.sender.send(b"x" * 100)
        await until(lambda: after_data)
        assert after_data[0] == (True, 0)  # owed, not sent at once
        await until(lambda: not sender._sent_queue, timeout=sctp_delayed_sack.SACK_DELAY + WAIT)
        assert sent[SackChunk.__name__] == 1


async def test_gaps_are_reported_at_once_and_lossy_transfers_complete() -> None:
    async with loopback_pair() as pair:
        sent: Counter[str] = Counter()
        count_chunks(pair.answerer.sctp, sent, Counter())
        with LossyLink(loss=0.02, delay=0.005, reorder=0.02, seed=18).installed() as link:
            await checked_transfer(pair, 60, timeout=120)
        assert link.dropped > 0 and link.reordered > 0
        assert sent[SackChunk.__name__] > 0
