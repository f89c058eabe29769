"""The timer wheel: each user called once, in time order, never early; rescheduling replaces."""

from __future__ import annotations

import asyncio

import pytest

from signaling.timer_wheel import TimerWheel

TICK = 0.01


class User:
    def __init__(self, name: str, calls: list[tuple[str, float]], fail: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail
        self.wheel_slot: int | None = None
        self.due = 0.0
        self.done = asyncio.Event()

    def on_wheel(self) -> None:
        self.calls.append((self.name, asyncio.get_running_loop().time()))
        self.done.set()
        if self.fail:
            raise RuntimeError("boom")


def plan(wheel: TimerWheel, user: User, delay: float) -> None:
    user.due = asyncio.get_running_loop().time() + delay
    wheel.schedule(user, delay)


async def test_users_fire_once_in_order_never_early_and_the_timer_stops() -> None:
    wheel = TimerWheel(TICK)
    calls: list[tuple[str, float]] = []
    late, early, failing = User("late", calls), User("early", calls), User("failing", calls, fail=True)
    plan(wheel, late, 0.08)
    plan(wheel, failing, 0.03)
    plan(wheel, early, 0.02)
    assert len(wheel) == 3
    await asyncio.wait_for(late.done.wait(), 2.0)
    assert [name for name, _ in calls] == ["early", "failing", "late"]  # a failure stops no one
    for user in (early, failing, late):
        fired = dict(calls)[user.name]
        assert fired >= user.due - 1e-3
        assert user.wheel_slot is None
    assert len(wheel) == 0 and wheel._handle is None


async def test_rescheduling_replaces_and_cancel_removes() -> None:
    wheel = TimerWheel(TICK)
    calls: list[tuple[str, float]] = []
    moved, cancelled, witness = User("moved", calls), User("cancelled", calls), User("witness", calls)
    plan(wheel, moved, 0.02)
    plan(wheel, cancelled, 0.02)
    plan(wheel, moved, 0.06)  # replaces the first plan
    wheel.cancel(cancelled)
    wheel.cancel(cancelled)  # twice is fine
    plan(wheel, witness, 0.1)
    await asyncio.wait_for(witness.done.wait(), 2.0)
    assert [name for name, _ in calls] == ["moved", "witness"]
    assert dict(calls)["moved"] >= moved.due - 1e-3


@pytest.mark.parametrize("delay", [0.0, -1.0])
async def test_a_moment_already_past_fires_at_the_next_tick(delay: float) -> None:
    wheel = TimerWheel(TICK)
    calls: list[tuple[str, float]] = []
    user = User("now", calls)
    wheel.schedule(user, delay)
    await asyncio.wait_for(user.done.wait(), 1.0)
    assert len(calls) == 1
