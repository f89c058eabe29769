"""Prometheus metrics, one registry per server so tests can run several."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REFUSAL_LOG_INTERVAL = 1.0
"""Refused connects are logged at most this often (seconds): each is counted."""

log = logging.getLogger("signaling")


class ThrottledLog:
    """Log a line at most once per ``interval``; the next one says how many were left out.

    Anyone can make the server refuse them as often as they like: logging each
    one would let them fill the disk. The counts stay exact in /metrics.
    """

    def __init__(self, interval: float = REFUSAL_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._next = float("-inf")
        self._skipped = 0

    def __call__(self, message: str, *args: object) -> bool:
        """Log ``message % args`` at INFO unless one was logged within the interval; True if logged."""
        now = self.clock()
        if now < self._next:
            self._skipped += 1
            return False
        self._next = now + self.interval
        skipped, self._skipped = self._skipped, 0
        suffix = f" (and {skipped} more refused since the last such line)" if skipped else ""
        log.info(message + "%s", *args, suffix)
        return True


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connected_clients = Gauge(
            "signaling_connected_clients", "Socket.IO clients connected now", registry=self.registry
        )
        self.rooms = Gauge("signaling_rooms", "Rooms with at least one peer", registry=self.registry)
        self.peers = Gauge(
            "signaling_peers", "Peers known, connected or within resume grace",
            registry=self.registry,
        )
        # Counted in plain dicts and read at each scrape: a prometheus_client
        # Counter takes a lock per inc(), three times per relayed message.
        self._requests: dict[tuple[str, str], int] = {}
        self._relayed: dict[str, int] = {}
        self._relayed_bytes = 0
        self._refused: dict[str, int] = {}
        self._refusal_log = ThrottledLog()
        self.registry.register(_Tallies(self))
        self.loop_lag = Gauge(
            "signaling_event_loop_lag_seconds",
            "How late the event loop ran a timer in the last sample (a stall shows here)",
            registry=self.registry,
        )
        self.backend_up = Gauge(
            "signaling_backend_up",
            "1 when the shared state (Redis) can be reached, or with no Redis; 0 while it cannot",
            registry=self.registry,
        )

    def request(self, event: str, outcome: str) -> None:
        key = (event, outcome)
        self._requests[key] = self._requests.get(key, 0) + 1

    def refused(self, reason: str, detail: str) -> None:
        """A connection refused before it had a session: ``reason`` one of
        ``origin``, ``host``, ``unauthorized``; counted, logged at most once a second."""
        self._refused[reason] = self._refused.get(reason, 0) + 1
        self._refusal_log("refused connection (%s): %s", reason, detail)

    def relayed(self, kind: str, messages: int, size: int) -> None:
        if messages:
            self._relayed[kind] = self._relayed.get(kind, 0) + messages
            self._relayed_bytes += size

    async def render(self, counts: Callable[[], Awaitable[tuple[int, int]]]) -> bytes:
        rooms, peers = await counts()
        self.rooms.set(rooms)
        self.peers.set(peers)
        return generate_latest(self.registry)


class _Tallies(Collector):
    """The request and relay counters, as Prometheus counters at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        requests = CounterMetricFamily(
            "signaling_requests", "Requests by event and outcome (ok or error code)",
            labels=["event", "outcome"],
        )
        for (event, outcome), count in sorted(self.metrics._requests.items()):
            requests.add_metric([event, outcome], count)
        relayed = CounterMetricFamily(
            "signaling_relayed_messages", "Messages handed to peers, by kind", labels=["kind"]
        )
        for kind, count in sorted(self.metrics._relayed.items()):
            relayed.add_metric([kind], count)
        refused = CounterMetricFamily(
            "signaling_refused_connections",
            "Connections refused before a session: origin, host (DNS rebinding guard) or unauthorized",
            labels=["reason"],
        )
        for reason, count in sorted(self.metrics._refused.items()):
            refused.add_metric([reason], count)
        yield requests
        yield relayed
        yield refused
        yield CounterMetricFamily(
            "signaling_relayed_bytes", "Payload bytes handed to peers", value=self.metrics._relayed_bytes
        )
