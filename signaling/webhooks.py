"""Signed webhooks: room and peer events POSTed to ``--webhook-url``.

The service calls ``emit`` and goes on at once: the event is written to a
bounded queue and sent later by a lane task. Events of one room always take
the same lane and a lane sends one at a time, retrying with backoff before
the next, so one room's events arrive in order. A dead or slow endpoint
fills the queues and further events are dropped and counted, never waited
for: memory stays bounded and requests never slow down. In a cluster each
event happens on one node (the one that handled the request or reaped the
peer), and that node alone posts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("signaling.webhooks")

SIGNATURE_HEADER = "X-Signaling-Signature"
LANES = 4
QUEUE_PER_LANE = 1000
ATTEMPTS = 5
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0
POST_TIMEOUT = 5.0
CLOSE_GRACE = 2.0


def signature(secret: str, body: bytes) -> str:
    """The header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_body(kind: str, room: str, peer_id: str | None, reason: str | None, at: float) -> bytes:
    event: dict[str, Any] = {"type": kind, "room": room}
    if peer_id is not None:
        event["peerId"] = peer_id
    if reason is not None:
        event["reason"] = reason
    event["at"] = at
    return orjson.dumps(event)


class Webhooks:
    """A ``RoomEvents`` sink for the service that posts each event, signed."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        lanes: int = LANES,
        queue_size: int = QUEUE_PER_LANE,
        attempts: int = ATTEMPTS,
        first_backoff: float = FIRST_BACKOFF,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.first_backoff = first_backoff
        self.clock = clock
        self._queues: list[asyncio.Queue[bytes]] = [asyncio.Queue(queue_size) for _ in range(lanes)]
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self.sent = self.failed = self.dropped = 0

    def emit(self, kind: str, room: str, peer_id: str | None = None, reason: str | None = None) -> None:
        body = event_body(kind, room, peer_id, reason, self.clock())
        queue = self._queues[zlib.crc32(room.encode()) % len(self._queues)]
        try:
            queue.put_nowait(body)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("webhook queue full (%s not answering?): %d events dropped so far",
                            self.url, self.dropped)

    @property
    def queued(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT))
        self._tasks = [
            asyncio.create_task(self._lane(queue), name=f"webhook-lane-{n}")
            for n, queue in enumerate(self._queues)
        ]

    async def close(self) -> None:
        """Send what is queued for a moment more, then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_GRACE):
                await asyncio.gather(*(q.join() for q in self._queues))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _lane(self, queue: asyncio.Queue[bytes]) -> None:
        while True:
            body = await queue.get()
            try:
                await self._post(body)
            finally:
                queue.task_done()

    async def _post(self, body: bytes) -> None:
        assert self._http is not None
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(self.secret, body)}
        why = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(min(MAX_BACKOFF, self.first_backoff * 2 ** (attempt - 1)))
            try:
                async with self._http.post(self.url, data=body, headers=headers,
                                           allow_redirects=False) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
                    why = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                why = str(exc) or type(exc).__name__
        self.failed += 1
        log.warning("webhook to %s failed %d times (%s): event dropped", self.url, self.attempts, why)


class WebhookTallies(Collector):
    """``signaling_webhook_events_total{outcome}`` and the queue length, at scrape time."""

    def __init__(self, hooks: Webhooks) -> None:
        self.hooks = hooks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        events = CounterMetricFamily(
            "signaling_webhook_events",
            "Webhook events: sent, failed (gave up after retries), dropped (queue full)",
            labels=["outcome"],
        )
        events.add_metric(["sent"], self.hooks.sent)
        events.add_metric(["failed"], self.hooks.failed)
        events.add_metric(["dropped"], self.hooks.dropped)
        yield events
        yield GaugeMetricFamily(
            "signaling_webhook_queue", "Webhook events waiting to be sent", value=self.hooks.queued
        )
