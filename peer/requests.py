"""Requests waiting for their answer from one remote peer (mirrors ``web/static/lib/requests.js``).

Sans-I/O bookkeeping: :meth:`Pending.open` numbers a request (ids from 1,
per link) and gives the future its answer resolves; :meth:`Pending.answer`
settles it from a delivered response; :meth:`Pending.discard` forgets one
(timeout, cancel), after which a late answer is dropped. Whether a request
and its answer went by relay or data channel does not matter here: both are
ordinary session messages, delivered exactly once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import RequestError
from .session import Message

REQUEST_ERROR_CODES = ("no-handler", "handler-error", "timeout")


class Pending:
    """The open requests of one link."""

    def __init__(self) -> None:
        self._next = 1
        self._futures: dict[int, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._futures)

    def open(self) -> tuple[int, asyncio.Future[Any]]:
        request_id = self._next
        self._next += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return request_id, future

    def discard(self, request_id: int) -> None:
        self._futures.pop(request_id, None)

    def answer(self, message: Message) -> bool:
        """Settle the request ``message`` answers; False when none waits for it."""
        assert message.response is not None
        future = self._futures.pop(message.response, None)
        if future is None or future.done():
            return False
        if message.error is None:
            future.set_result(message.data)
        else:
            detail = message.data if isinstance(message.data, str) else ""
            future.set_exception(RequestError(message.error, detail or "the remote handler failed"))
        return True

    def fail_all(self, exc: BaseException) -> None:
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: its waiter may have gone
