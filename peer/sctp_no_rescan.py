"""aiortc 1.16.0: skip the retransmission scan of the sent queue when nothing awaits resending.

Upstream-ready description: ``RTCSctpTransport._transmit`` runs after every
SACK and every message queued, and first walks the whole sent queue looking
for chunks marked ``_retransmit``. On a fast path the queue holds every
chunk in flight (about 900 for a 1 MiB window), so each SACK costs a walk
of hundreds of chunks that finds nothing, nearly a fifth of the sender's
CPU. Chunks are marked for retransmission in two places only: a SACK that
reports gaps (the miss counter) and the T3 timer expiring. So a transport
remembers whether either happened since a walk last found the queue clean;
while neither did, ``_transmit`` runs with the walk presented an empty
sequence. After a loss it walks as before until a walk leaves nothing
marked. Nothing on the wire changes; what is sent and when is the same.

How the walk is skipped without copying ``_transmit``: for one call, the
sent queue is replaced by a stand-in whose first iteration (the walk) is
empty and which passes everything else (append, len, index, later
iterations) to the real deque, restored when the call ends (also when
calls overlap, which a TURN send can cause). With a FORWARD TSN pending
(partial reliability), which is sent before the walk, the walk is kept.

Guard: aiortc 1.16.0 exactly; otherwise it does nothing and logs once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import aiortc
from aiortc.rtcsctptransport import RTCSctpTransport

from .dependency_patch import applicable

MADE_FOR = "1.16.0"
_installed = False


class SkipFirstWalk:
    """The sent queue, except that its first iteration yields nothing."""

    __slots__ = ("queue", "walked")

    def __init__(self, queue: deque[Any]) -> None:
        self.queue = queue
        self.walked = False

    def __iter__(self) -> Iterator[Any]:
        if not self.walked:
            self.walked = True
            return iter(())
        return iter(self.queue)

    def __len__(self) -> int:
        return len(self.queue)

    def __bool__(self) -> bool:
        return bool(self.queue)

    def __getitem__(self, index: int) -> Any:
        return self.queue[index]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def any_marked(queue: deque[Any]) -> bool:
    """Whether a chunk in the sent queue still waits to be resent."""
    return any(chunk._retransmit for chunk in queue)


def install() -> bool:
    """Patch ``_transmit``, ``_receive_sack_chunk`` and ``_t3_expired`` once."""
    global _installed
    if _installed:
        return True
    if not applicable("sctp_no_rescan", aiortc.__version__, MADE_FOR,
                      [(RTCSctpTransport, name) for name in
                       ("_transmit", "_receive_sack_chunk", "_t3_expired")]):
        return False
    transmit = RTCSctpTransport._transmit
    receive_sack = RTCSctpTransport._receive_sack_chunk
    t3_expired = RTCSctpTransport._t3_expired

    async def _transmit(self: Any) -> None:
        # A pending FORWARD TSN is sent (awaited) before the walk: keep the
        # walk then, so that nothing else can meet an unwalked stand-in.
        if getattr(self, "_rtc_may_resend", True) or self._forward_tsn_chunk is not None:
            await transmit(self)
            self._rtc_may_resend = any_marked(self._sent_queue)
            return
        current = self._sent_queue  # a stand-in already, if a call is suspended in a send
        real = current.queue if isinstance(current, SkipFirstWalk) else current
        stand_in = SkipFirstWalk(real)
        self._sent_queue = stand_in
        try:
            await transmit(self)
        finally:
            if self._sent_queue is stand_in:
                self._sent_queue = real

    async def _receive_sack_chunk(self: Any, chunk: Any) -> None:
        if chunk.gaps:  # the miss counter may mark chunks
            self._rtc_may_resend = True
        await receive_sack(self, chunk)

    def _t3_expired(self: Any) -> None:
        self._rtc_may_resend = True  # every chunk in flight is marked
        t3_expired(self)

    RTCSctpTransport._transmit = _transmit  # type: ignore[method-assign]
    RTCSctpTransport._receive_sack_chunk = _receive_sack_chunk  # type: ignore[method-assign]
    RTCSctpTransport._t3_expired = _t3_expired  # type: ignore[method-assign]
    _installed = True
    return True
