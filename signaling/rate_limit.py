"""Per-connection request limits, with the clock passed in.

The contract: past ``--rate-limit`` requests a second a connection is answered
``rate-limited``, by a token bucket that starts full and holds twice the rate;
every request counts, failed ones too; 0 turns limiting off. v1.1 adds
``--rate-limit-bytes``, the payload bytes a connection may have handed to
peers each second (:class:`ByteBudget`), charged by the service, which alone
knows how many peers a request reached.

On top of that, a connection that keeps hammering far past its limit is
disconnected. The policy (:class:`AbuseTracker`): each refused request is a
strike; strikes drain at the same rate as the limit; more than
:data:`STRIKES_PER_BURST` times the burst of outstanding strikes disconnects.
With ``--rate-limit 100`` (burst 200) that is 1,000 strikes: a client sending
at twice its limit or less is only refused, never disconnected; one sending
3x its limit is disconnected after about 11 s (1 s to empty the bucket, 10 s
of strikes), and a flood of 1,001 requests beyond the burst at once is
disconnected at once.

:class:`ConnectionLimiter` puts both together: one per connection, one
:meth:`~ConnectionLimiter.admit` per request.
"""

from __future__ import annotations

import enum
import math

BURST_FACTOR = 2.0
"""The bucket holds this many seconds' worth of requests."""
STRIKES_PER_BURST = 5.0
"""Outstanding refusals tolerated, in bursts, before disconnecting."""
_EPSILON = 1e-6


class TokenBucket:
    """A token bucket of ``burst`` tokens refilled at ``rate`` a second, full at ``now``.

    ``rate`` 0 disables it: :meth:`take` always succeeds.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError("rate must be a finite number >= 0")
        if rate > 0 and not (burst >= 1 and math.isfinite(burst)):
            raise ValueError("burst must be a finite number >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def take(self, now: float) -> bool:
        """Take one token at time ``now``; False (and nothing taken) when empty.

        A clock that goes backwards refills nothing. A token counts as whole
        when within 1e-6 of it, so float rounding of ``now`` never starves.
        """
        if self.rate == 0:
            return True
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._tokens >= 1 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False


class AbuseTracker:
    """Strikes for refused requests: ``strikes`` tolerated at once, draining at ``rate``/s."""

    __slots__ = ("_bucket",)

    def __init__(self, rate: float, strikes: float, now: float) -> None:
        self._bucket = TokenBucket(rate, strikes, now)

    def refused(self, now: float) -> bool:
        """Record one refused request at ``now``; True when the connection should be dropped."""
        return not self._bucket.take(now)


class Verdict(enum.Enum):
    """What to do with one request."""

    ALLOW = "allow"
    REFUSE = "refuse"
    """Answer ``rate-limited`` and do nothing else."""
    DISCONNECT = "disconnect"
    """Drop the connection: it is far past its limit."""


class ConnectionLimiter:
    """The contract's limit for one connection: ``rate`` requests/s (0: off), burst twice that.

    The burst is at least one request, so a rate below 0.5/s still lets
    requests through.
    """

    __slots__ = ("_abuse", "_bucket")

    def __init__(self, rate: float, now: float) -> None:
        burst = max(1.0, BURST_FACTOR * rate)
        self._bucket = TokenBucket(rate, burst, now)
        # Made at the first refusal: until then its bucket would be full
        # whatever the time, and most connections are never refused.
        self._abuse: AbuseTracker | None = None

    def admit(self, now: float) -> Verdict:
        """Count one request at ``now`` and say what to do with it."""
        if self._bucket.take(now):
            return Verdict.ALLOW
        if self._abuse is None:
            bucket = self._bucket
            self._abuse = AbuseTracker(bucket.rate, STRIKES_PER_BURST * bucket.burst, now)
        if self._abuse.refused(now):
            return Verdict.DISCONNECT
        return Verdict.REFUSE


class ByteBudget:
    """The contract's ``--rate-limit-bytes``: payload bytes a second handed to peers.

    A token bucket of ``2 * rate`` bytes that starts full. Unlike the request
    bucket it is checked and charged apart: a request is admitted while the
    level is above zero, and charged afterwards by what it actually cost (its
    payload times the peers it was handed to, known only once routed), which
    may take the level below zero. One request therefore never needs a bucket
    as big as itself, and the debt is paid back at ``rate`` before the next one.
    ``rate`` 0 turns it off.
    """

    __slots__ = ("_last", "_level", "burst", "rate")

    def __init__(self, rate: float, now: float) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise ValueError("rate must be a finite number >= 0")
        self.rate = rate
        self.burst = BURST_FACTOR * rate
        self._level = self.burst
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:  # a clock going backwards refills nothing
            self._level = min(self.burst, self._level + (now - self._last) * self.rate)
            self._last = now

    def admit(self, now: float) -> bool:
        """Whether a request may go now (the bucket is above zero)."""
        if self.rate == 0:
            return True
        self._refill(now)
        return self._level > 0

    def charge(self, size: int, now: float) -> None:
        """Take ``size`` bytes, going below zero if need be."""
        if self.rate == 0:
            return
        self._refill(now)
        self._level -= size

    @property
    def level(self) -> float:
        return self._level
