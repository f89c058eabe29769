"""F9: loss, delay and reorder on the peer-to-peer path.

``tc netem`` is not available on this machine, so :class:`LossyLink` drops,
delays and reorders the datagrams aioice hands up (DTLS and SCTP; STUN is left
alone so that ICE consent is not what is measured), for both ends in this
process. Sizes are kept small for CI: SCTP in aiortc recovers a lost chunk by
fast retransmit or, for a lone loss, its retransmission timer (1 s minimum),
so 20 % loss costs seconds per hundred messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import time
from typing import Any

import pytest

from peer import Peer
from tests.helpers.server import running_server

from .rtc import channel_pair, send_paced
from .support import WAIT, LossyLink, until


def numbered(count: int, size: int) -> list[bytes]:
    return [struct.pack("!I", n) + os.urandom(size - 4) for n in range(count)]


@pytest.mark.parametrize(("loss", "count"), [(0.01, 300), (0.05, 200), (0.20, 100)])
async def test_reliable_ordered_channel_delivers_everything_in_order(
    loss: float, count: int
) -> None:
    messages = numbered(count, 1024)
    async with channel_pair(ordered=True) as pair:
        got: list[bytes] = []
        pair.receiver.on("message", got.append)
        with LossyLink(loss=loss, delay=0.03, reorder=0.05, seed=int(loss * 100)).installed() as link:
            started = time.monotonic()
            await send_paced(pair.sender, messages)
            await until(lambda: len(got) >= count, timeout=60)
            took = time.monotonic() - started
        assert [struct.unpack("!I", m[:4])[0] for m in got] == list(range(count))
        sent_digest = hashlib.sha256(b"".join(messages)).hexdigest()
        assert hashlib.sha256(b"".join(got)).hexdigest() == sent_digest
        assert link.dropped > 0 and link.reordered > 0
        print(f"loss {loss:.0%}: {count} x 1 KiB in {took:.1f} s, "
              f"dropped {link.dropped}, reordered {link.reordered}, passed {link.passed}")


async def test_unreliable_channel_delivers_a_subset_without_duplicates_or_damage() -> None:
    """``maxRetransmits=0``: what arrives is a subset, in order, each message intact."""
    messages = numbered(300, 512)
    digests = {hashlib.sha256(m).digest() for m in messages}
    async with channel_pair(ordered=True, maxRetransmits=0) as pair:
        got: list[bytes] = []
        pair.receiver.on("message", got.append)
        with LossyLink(loss=0.20, delay=0.03, reorder=0.05, seed=7).installed():
            await send_paced(pair.sender, messages)
            # Quiescence, bounded: stop once nothing new arrived for 1 s.
            deadline = time.monotonic() + 20
            seen = -1
            while len(got) != seen and len(got) < len(messages) and time.monotonic() < deadline:
                seen = len(got)
                await asyncio.sleep(1.0)
        seqs = [struct.unpack("!I", m[:4])[0] for m in got]
        assert 0 < len(got) < len(messages)
        assert len(set(seqs)) == len(seqs), "duplicates"
        assert seqs == sorted(seqs), "out of order on an ordered channel"
        assert all(hashlib.sha256(m).digest() in digests for m in got), "damaged message"


async def test_peer_emits_arrive_exactly_once_in_order_at_5_percent_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same through the Peer API (its own session over the data channel).

    On aiortc: the lossy link is installed into aiortc's datagram path."""
    monkeypatch.setenv("RTC_PEER_ENGINE", "aiortc")
    count = 150
    blobs = numbered(count, 2048)
    async with running_server() as server:
        a, b = Peer(server.url, "f9"), Peer(server.url, "f9")
        got: list[Any] = []
        upgraded = asyncio.Event()
        b.on("blob", lambda sender, data: got.append(data))
        a.on("upgrade", lambda peer_id, _: upgraded.set())
        async with a, b:
            await asyncio.wait_for(upgraded.wait(), WAIT)
            await until(lambda: b.id in a.peers and a.transport(b.id) == "webrtc")
            with LossyLink(loss=0.05, delay=0.03, reorder=0.05, seed=5).installed() as link:
                for blob in blobs:
                    await a.emit("blob", blob, to=b.id)
                await until(lambda: len(got) >= count, timeout=60)
            assert [struct.unpack("!I", m[:4])[0] for m in got] == list(range(count))
            received = hashlib.sha256(b"".join(got)).hexdigest()
            assert received == hashlib.sha256(b"".join(blobs)).hexdigest()
            assert link.dropped > 0
