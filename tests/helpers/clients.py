"""python-socketio clients that record what they receive, for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import socketio

EVENTS = ("peer-joined", "peer-left", "peer-updated", "signal", "relay", "rejected")
WAIT = 10.0
FLUSH_TIMEOUT = 5.0


async def disconnect_flushed(sio: socketio.AsyncClient, timeout: float = FLUSH_TIMEOUT) -> None:
    """``sio.disconnect()`` once everything already queued has been sent.

    python-engineio 4.15.1's client, on polling, drops what ``disconnect()``
    queues (the Socket.IO DISCONNECT and the Engine.IO close) when a POST is
    still in flight: its write loop sends nothing once the state is no longer
    ``connected``. The ack of a request comes back on the long-poll GET, often
    before the response of the POST that carried it, so ``leave`` then
    ``disconnect()`` says no goodbye and the server takes the connection for
    lost (docs/reliability.md, bug 6). The queue's ``join`` returns once the
    write loop has the response of every POST.
    """
    eio = sio.eio
    if eio.state == "connected" and eio.current_transport == "polling" and eio.write_loop_task:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await eio.queue.join()
    await sio.disconnect()


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

    async def connect(self, url: str, transports: list[str] | None = None, **kwargs: Any) -> RecordingClient:
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
        await disconnect_flushed(self.sio)
