"""Fakes for tests: a clock you move by hand and in-memory message channels.

They are part of the package (not of ``tests/``) so that every layer's tests,
and users' own, run real code over links whose loss, reordering and failure
they control. Everything here is deterministic given the ``seed``.
"""

from __future__ import annotations

import random

from .errors import PeerError


class ChannelClosed(PeerError):
    """``send`` on a channel that was closed (by either end)."""


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self.now += seconds
        return self.now


class MemoryChannel:
    """One end of an in-memory message channel; see :func:`channel_pair`.

    ``send`` puts a message in flight towards the other end; ``receive``
    returns what has arrived there since the last call. Each message is lost
    with probability ``loss``; each one in flight is held back to a later
    ``receive`` with probability ``reorder`` (so later ones overtake it).
    """

    def __init__(self, rng: random.Random, loss: float, reorder: float) -> None:
        self.peer: MemoryChannel | None = None
        self.closed = False
        self._rng = rng
        self._loss = loss
        self._reorder = reorder
        self._in_flight: list[bytes] = []

    def send(self, data: bytes) -> None:
        if self.closed or self.peer is None:
            raise ChannelClosed("channel is closed")
        if self._rng.random() >= self._loss:
            self.peer._in_flight.append(bytes(data))

    def receive(self) -> list[bytes]:
        """Messages arrived at this end; none once the channel is closed."""
        arrived: list[bytes] = []
        held: list[bytes] = []
        for data in self._in_flight:
            (held if self._rng.random() < self._reorder else arrived).append(data)
        self._in_flight = held
        return arrived

    @property
    def in_flight(self) -> int:
        """Messages sent towards this end and not yet received."""
        return len(self._in_flight)

    def close(self) -> None:
        """Forced close of both ends: whatever is in flight is lost."""
        for end in (self, self.peer):
            if end is not None:
                end.closed = True
                end._in_flight.clear()


def channel_pair(
    *, loss: float = 0.0, reorder: float = 0.0, seed: int = 0
) -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected channel ends sharing one seeded random source."""
    rng = random.Random(seed)
    a = MemoryChannel(rng, loss, reorder)
    b = MemoryChannel(rng, loss, reorder)
    a.peer, b.peer = b, a
    return a, b
