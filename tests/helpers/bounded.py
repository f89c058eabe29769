"""Bounded waits for fixtures: a teardown that hangs fails fast and says on what."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
TEARDOWN = 15.0


def _pending_tasks() -> str:
    current = asyncio.current_task()
    lines = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        frames = task.get_stack(limit=1)
        where = f"{frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else "?"
        lines.append(f"  {task.get_name()} at {where}")
    return "\n".join(sorted(lines)) or "  (none)"


async def within(awaitable: Awaitable[T], what: str, seconds: float = TEARDOWN) -> T:
    """``await awaitable``, or fail after ``seconds`` naming ``what`` and the tasks still pending."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(
            f"{what} did not finish within {seconds:g} s; tasks still pending:\n{_pending_tasks()}"
        ) from None


async def terminate(process: asyncio.subprocess.Process, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; a no-op once it ended."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()
