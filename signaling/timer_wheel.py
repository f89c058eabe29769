"""One event-loop timer for many sessions that each wait for one moment.

Every idle connection waits for its next ping, then for that ping's
deadline. With a loop timer each (a handle, a bound method, an argument
tuple: ~600 B, measured with tracemalloc) that was the largest part of an
idle connection's memory that this project owns. Here a session is one
entry in the set of its tick, and one timer serves them all; it fires up to
one tick late, which a ping interval of seconds does not notice.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

log = logging.getLogger("signaling")


class WheelUser(Protocol):
    wheel_slot: int | None
    """The tick this object waits for (None: not waiting); the wheel keeps it."""

    def on_wheel(self) -> None:
        """Its moment came (up to one tick late)."""


class TimerWheel:
    def __init__(self, tick: float = 0.25) -> None:
        self.tick = tick
        self._slots: dict[int, set[WheelUser]] = {}
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(users) for users in self._slots.values())

    def schedule(self, user: WheelUser, delay: float) -> None:
        """Call ``user.on_wheel()`` ``delay`` seconds from now, instead of any earlier plan."""
        self.cancel(user)
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + delay) / self.tick)
        self._slots.setdefault(slot, set()).add(user)
        user.wheel_slot = slot
        if self._handle is None:
            self._handle = loop.call_later(self.tick, self._turn)

    def cancel(self, user: WheelUser) -> None:
        slot = user.wheel_slot
        if slot is None:
            return
        user.wheel_slot = None
        users = self._slots.get(slot)
        if users is not None:
            users.discard(user)
            if not users:
                del self._slots[slot]

    def _turn(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time() / self.tick
        for slot in sorted(s for s in self._slots if s <= now):
            for user in self._slots.pop(slot):
                user.wheel_slot = None
                try:
                    user.on_wheel()
                except Exception:
                    log.exception("timer of %r failed", user)
        self._handle = loop.call_later(self.tick, self._turn) if self._slots else None
