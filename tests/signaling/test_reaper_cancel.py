"""The resume reaper ends when cancelled, even if the cancel was swallowed on the way."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling.app import _reap
from signaling.settings import Settings


class SwallowingService:
    """As redis-py can: a cancel landing inside a call comes out as an ordinary error."""

    def __init__(self) -> None:
        self.calls = 0
        self.inside = asyncio.Event()

    async def expire(self) -> None:
        self.calls += 1
        self.inside.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("connection closed by the cancel") from None


async def test_a_cancelled_reaper_ends_even_when_the_cancel_is_swallowed() -> None:
    service = SwallowingService()
    settings: Any = Settings(resume_grace=0.2)
    task = asyncio.create_task(_reap(service, settings))  # type: ignore[arg-type]
    await asyncio.wait_for(service.inside.wait(), 5)
    task.cancel()
    await asyncio.wait_for(asyncio.wait({task}), 5)
    assert task.done()
    assert service.calls == 1
