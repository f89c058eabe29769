"""A library loop ends on close even when something it awaited swallowed the cancel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from peer.tasks import end_if_cancelled


async def test_a_loop_ends_when_its_cancel_was_swallowed() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    working = asyncio.Event()

    async def step() -> None:
        # What Python 3.11's wait_for may do when a cancel races its inner future.
        working.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)

    async def loop() -> None:
        while True:
            end_if_cancelled()
            await queue.get()
            await step()

    task = asyncio.create_task(loop())
    queue.put_nowait(1)
    await asyncio.wait_for(working.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)  # without end_if_cancelled: waits on the queue for ever


async def test_an_uncancelled_task_goes_on() -> None:
    end_if_cancelled()  # nothing asked this task to stop
