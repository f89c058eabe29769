"""Ending the library's own long-running tasks when they are cancelled.

Python 3.11's ``asyncio.wait_for`` can return its inner result and drop a
cancellation that raced it (CPython gh-86296; python-socketio's ``call`` and
aiortc wait that way). A task whose loop then waits again for its next item
would never end, and ``close()``, which awaits it, would hang. Each such loop
calls :func:`end_if_cancelled` before it waits again.
"""

from __future__ import annotations

import asyncio


def end_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task was asked to stop, even if the
    cancellation was swallowed on the way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
