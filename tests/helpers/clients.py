"""python-socketio clients that record what they receive, for tests."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio

EVENTS = ("peer-joined", "peer-left", "signal", "relay", "rejected")
WAIT = 10.0


class RecordingClient:
    """A real ``socketio.AsyncClient`` that keeps every contract event it gets."""

    def __init__(self, **client_options: Any) -> None:
        self.sio = socketio.AsyncClient(reconnection=False, **client_options)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        for event in EVENTS:
            self.sio.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(payload: Any) -> None:
            async with self._arrived:
                self.received[event].append(payload)
                self._arrived.notify_all()

        return record

    async def connect(self, url: str, transports: list[str] | None = None, **kwargs: Any) -> "RecordingClient":
        await self.sio.connect(url, transports=transports or ["websocket"], wait_timeout=WAIT, **kwargs)
        return self

    async def request(self, event: str, payload: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(event, payload, timeout=WAIT)
        return reply

    async def join(self, room: str, **fields: Any) -> dict[str, Any]:
        return await self.request("join", {"room": room, **fields})

    async def wait_for(self, event: str, count: int = 1, timeout: float = WAIT) -> list[Any]:
        """Wait until ``count`` ``event``s have arrived; return them all."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received[event]) >= count), timeout
            )
            return list(self.received[event])

    async def disconnect(self) -> None:
        await self.sio.disconnect()
