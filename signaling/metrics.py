"""Prometheus metrics, one registry per server so tests can run several."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
        self.requests = Counter(
            "signaling_requests", "Requests by event and outcome (ok or error code)",
            ["event", "outcome"], registry=self.registry,
        )
        self.relayed_messages = Counter(
            "signaling_relayed_messages", "Messages handed to peers, by kind",
            ["kind"], registry=self.registry,
        )
        self.relayed_bytes = Counter(
            "signaling_relayed_bytes", "Payload bytes handed to peers", registry=self.registry
        )

        self.loop_lag = Gauge(
            "signaling_event_loop_lag_seconds",
            "How late the event loop ran a timer in the last sample (a stall shows here)",
            registry=self.registry,
        )
        # Labelled children, looked up once: labels() costs more than inc().
        self._requests: dict[tuple[str, str], Any] = {}
        self._relayed: dict[str, Any] = {}

    def request(self, event: str, outcome: str) -> None:
        child = self._requests.get((event, outcome))
        if child is None:
            child = self._requests[(event, outcome)] = self.requests.labels(event=event, outcome=outcome)
        child.inc()

    def relayed(self, kind: str, messages: int, size: int) -> None:
        if messages:
            child = self._relayed.get(kind)
            if child is None:
                child = self._relayed[kind] = self.relayed_messages.labels(kind=kind)
            child.inc(messages)
            self.relayed_bytes.inc(size)

    async def render(self, counts: Callable[[], Awaitable[tuple[int, int]]]) -> bytes:
        rooms, peers = await counts()
        self.rooms.set(rooms)
        self.peers.set(peers)
        return generate_latest(self.registry)
