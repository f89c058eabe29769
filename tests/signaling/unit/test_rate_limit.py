"""Token bucket, strike policy and per-connection limiter, on a fake clock."""

from __future__ import annotations

import pytest

from signaling.rate_limit import AbuseTracker, ConnectionLimiter, TokenBucket, Verdict

T0 = 1_000_000.0


def takes(bucket: TokenBucket, times: list[float]) -> list[bool]:
    return [bucket.take(T0 + t) for t in times]


@pytest.mark.parametrize(
    ("rate", "burst", "times", "expected"),
    [
        # starts full: burst requests at once, then refused
        (10, 20, [0.0] * 21, [True] * 20 + [False]),
        # refills at rate: 0.1 s gives one more token at 10/s
        (10, 20, [0.0] * 20 + [0.05, 0.1, 0.1], [True] * 20 + [False, True, False]),
        # never above burst, however long idle
        (10, 2, [0.0, 0.0, 100.0, 100.0, 100.0], [True, True, True, True, False]),
        # steady at exactly the rate is always allowed
        (4, 8, [i * 0.25 for i in range(40)], [True] * 40),
        # a failed take takes nothing: tokens keep accruing
        (1, 1, [0.0, 0.5, 0.9, 1.0, 1.1], [True, False, False, True, False]),
        # float rounding of the clock never starves a due token
        (10, 1, [0.1, 0.2, 0.3], [True, True, True]),
    ],
    ids=["burst", "refill", "cap", "steady", "no-charge-on-refusal", "float-rounding"],
)
def test_token_bucket(rate: float, burst: float, times: list[float], expected: list[bool]) -> None:
    assert takes(TokenBucket(rate, burst, T0), times) == expected


def test_float_rounding_case_is_a_real_rounding_case() -> None:
    # Guards the "float-rounding" row above: these clock readings lose precision.
    assert ((T0 + 0.2) - (T0 + 0.1)) * 10 < 1


def test_rate_zero_is_off() -> None:
    assert takes(TokenBucket(0, 0, T0), [0.0] * 10_000) == [True] * 10_000


def test_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket(1, 1, T0)
    assert takes(bucket, [10.0, 5.0, 9.9, 10.5, 11.0]) == [True, False, False, False, True]


@pytest.mark.parametrize(
    ("rate", "burst"), [(-1, 2), (float("inf"), 2), (float("nan"), 2), (1, 0.5), (1, float("inf"))]
)
def test_bad_parameters(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, T0)


def test_abuse_tracker_tolerates_strikes_then_says_disconnect() -> None:
    tracker = AbuseTracker(rate=10, strikes=5, now=T0)
    assert [tracker.refused(T0) for _ in range(6)] == [False] * 5 + [True]


def test_abuse_tracker_strikes_drain_over_time() -> None:
    tracker = AbuseTracker(rate=10, strikes=5, now=T0)
    assert [tracker.refused(T0) for _ in range(5)] == [False] * 5
    # 0.5 s later five strikes have drained
    assert [tracker.refused(T0 + 0.5) for _ in range(6)] == [False] * 5 + [True]


def run(limiter: ConnectionLimiter, per_second: float, seconds: float) -> list[Verdict]:
    """Send at a steady pace until the first DISCONNECT or the time is up."""
    verdicts: list[Verdict] = []
    n = int(per_second * seconds)
    for i in range(n):
        verdict = limiter.admit(T0 + i / per_second)
        verdicts.append(verdict)
        if verdict is Verdict.DISCONNECT:
            break
    return verdicts


def test_limiter_burst_is_twice_the_rate() -> None:
    limiter = ConnectionLimiter(rate=100, now=T0)
    verdicts = [limiter.admit(T0) for _ in range(201)]
    assert verdicts == [Verdict.ALLOW] * 200 + [Verdict.REFUSE]


def test_limiter_small_rate_still_allows_one_request() -> None:
    limiter = ConnectionLimiter(rate=0.25, now=T0)
    assert [limiter.admit(T0), limiter.admit(T0 + 1)] == [Verdict.ALLOW, Verdict.REFUSE]
    assert limiter.admit(T0 + 4) is Verdict.ALLOW


def test_limiter_off_at_rate_zero() -> None:
    limiter = ConnectionLimiter(rate=0, now=T0)
    assert {limiter.admit(T0) for _ in range(100_000)} == {Verdict.ALLOW}


@pytest.mark.parametrize(
    ("per_second", "seconds", "disconnected"),
    [
        (100, 30, False),  # at the limit: never refused
        (150, 30, False),  # 1.5x: refused now and then, kept
        (199, 30, False),  # just under 2x: kept
        (300, 30, True),  # 3x: dropped after ~11 s
    ],
)
def test_limiter_sustained_pace(per_second: float, seconds: float, disconnected: bool) -> None:
    verdicts = run(ConnectionLimiter(rate=10, now=T0), per_second / 10, seconds)
    assert (verdicts[-1] is Verdict.DISCONNECT) is disconnected
    if per_second > 100:
        assert Verdict.REFUSE in verdicts
    else:
        assert set(verdicts) == {Verdict.ALLOW}


def test_limiter_3x_pace_is_dropped_after_about_11_seconds() -> None:
    pace = 30.0
    verdicts = run(ConnectionLimiter(rate=10, now=T0), pace, 60)
    assert verdicts[-1] is Verdict.DISCONNECT
    # 1 s to empty the bucket (burst 20 at net -20/s), 10 s for 100 strikes at net +10/s
    assert 10.5 < (len(verdicts) - 1) / pace < 11.5


def test_limiter_flood_is_dropped_after_five_bursts_of_refusals() -> None:
    limiter = ConnectionLimiter(rate=100, now=T0)
    verdicts = [limiter.admit(T0) for _ in range(200 + 1001)]
    assert verdicts == [Verdict.ALLOW] * 200 + [Verdict.REFUSE] * 1000 + [Verdict.DISCONNECT]


def test_limiter_refusals_recover_after_a_pause() -> None:
    limiter = ConnectionLimiter(rate=100, now=T0)
    for _ in range(200 + 999):
        limiter.admit(T0)
    # 20 s idle: bucket refilled and strikes drained; the same flood is survived again
    verdicts = [limiter.admit(T0 + 20) for _ in range(200 + 1000)]
    assert Verdict.DISCONNECT not in verdicts
    assert verdicts[:200] == [Verdict.ALLOW] * 200


def test_byte_budget_admits_above_zero_then_charges() -> None:
    from signaling.rate_limit import ByteBudget

    budget = ByteBudget(100, T0)  # burst 200, starts full
    assert budget.admit(T0)
    budget.charge(150, T0)
    assert budget.admit(T0)  # 50 left: above zero
    budget.charge(150, T0)  # may go below zero
    assert budget.level == -100 and not budget.admit(T0)
    assert not budget.admit(T0 + 1.0)  # back to 0: not above it
    assert budget.admit(T0 + 1.01)
    budget.charge(0, T0 + 1000)
    assert budget.level == 200  # never above the burst
    assert budget.admit(T0 - 5) and budget.level == 200  # a clock going back changes nothing


def test_byte_budget_off() -> None:
    from signaling.rate_limit import ByteBudget

    budget = ByteBudget(0, T0)
    budget.charge(10**12, T0)
    assert budget.admit(T0)
