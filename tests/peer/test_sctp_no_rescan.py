"""peer.sctp_no_rescan: the sent queue is walked only after a loss, and resends still happen."""

from __future__ import annotations

import asyncio
from collections import deque

from peer.sctp_no_rescan import SkipFirstWalk, any_marked
from tests.peer.fast_path_support import checked_transfer, loopback_pair
from tests.reliability.support import LossyLink


class Chunk:
    def __init__(self, retransmit: bool = False) -> None:
        self._retransmit = retransmit


def test_the_stand_in_hides_only_the_first_walk() -> None:
    real: deque[Chunk] = deque([Chunk(), Chunk(True)])
    stand_in = SkipFirstWalk(real)
    assert list(stand_in) == []
    assert list(stand_in) == list(real)  # later walks (T3, gap blocks) see everything
    added = Chunk()
    stand_in.append(added)
    assert real[-1] is added and stand_in[-1] is added and len(stand_in) == 3 and stand_in
    assert stand_in.index(added) == 2
    assert any_marked(real) and not any_marked(deque([Chunk()]))


async def test_no_loss_skips_the_walk_and_delivers_everything() -> None:
    async with loopback_pair() as pair:
        sender = pair.offerer.sctp
        await checked_transfer(pair, 200)
        assert sender._rtc_may_resend is False
        assert type(sender._sent_queue) is deque  # the real queue is back after each call


async def test_losses_are_resent_exactly_once_in_order() -> None:
    async with loopback_pair() as pair:
        sender = pair.offerer.sctp
        with LossyLink(loss=0.03, delay=0.005, reorder=0.02, seed=7).installed() as link:
            await checked_transfer(pair, 60, timeout=120)
        assert link.dropped > 0
        assert not any_marked(sender._sent_queue)



async def test_overlapping_calls_leave_the_real_queue_in_place() -> None:
    """Sends that yield (as a TURN send can) make ``_transmit`` calls overlap."""
    async with loopback_pair() as pair:
        sender = pair.offerer.sctp
        send_chunk = sender._send_chunk

        async def yielding_send(chunk: object) -> None:
            await asyncio.sleep(0)
            await send_chunk(chunk)

        sender._send_chunk = yielding_send
        await checked_transfer(pair, 100)
        assert type(sender._sent_queue) is deque
