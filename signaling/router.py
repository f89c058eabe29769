"""Which local connection speaks for which peer: where backends deliver into.

One-way: a backend hands deliveries to ``Router.deliver`` and is done; the
router finds the connection and hands them on. A connection whose join is in
flight holds what arrives for it until its ack has gone out (a joiner sees
its ack before any event of the room). A connection resuming a peer becomes
that peer's only while its join is answered, so a delivery for a peer with
no bound connection is looked for among the joins in flight (a handful),
never among all connections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Sequence
from typing import Any, Protocol

from .backends.base import Delivery


class Endpoint(Protocol):
    """A connection as the router sees it."""

    held: list[Delivery] | None  # not None while a join is in flight
    closing: bool

    @property
    def peer_id(self) -> str: ...

    def send_deliveries(self, deliveries: list[Delivery], encoded: dict[int, Any]) -> None:
        """Write these now (``encoded`` shares one encoding per payload object)."""


class Router:
    """``resuming``: peers whose resume is under way (their mail belongs to the join
    resuming them, never to the connection it replaces); ``controls``: delivery
    events that are orders to this node about a connection (an admin's kick), not
    messages for its client."""

    def __init__(
        self,
        resuming: Container[str] = frozenset(),
        controls: dict[str, Callable[[Any], Awaitable[None]]] | None = None,
    ) -> None:
        self.by_peer: dict[str, Endpoint] = {}
        self.joining: set[Endpoint] = set()
        self.resuming = resuming
        self.controls = controls or {}

    def bind(self, endpoint: Endpoint) -> Endpoint | None:
        """Route ``endpoint``'s peer to it; returns the endpoint it replaces, if any."""
        peer_id = endpoint.peer_id
        previous = self.by_peer.get(peer_id)
        if previous is endpoint:
            return None
        self.by_peer[peer_id] = endpoint
        return previous

    def unbind(self, endpoint: Endpoint, peer_id: str | None = None) -> None:
        """Forget ``endpoint`` (for ``peer_id``, by default the one it speaks for now)."""
        peer_id = endpoint.peer_id if peer_id is None else peer_id
        if self.by_peer.get(peer_id) is endpoint:
            del self.by_peer[peer_id]
        self.joining.discard(endpoint)

    def hold(self, endpoint: Endpoint) -> None:
        """A join starts: what arrives for the endpoint waits behind its ack."""
        endpoint.held = []
        self.joining.add(endpoint)

    def release(self, endpoint: Endpoint) -> list[Delivery]:
        """The ack went out: what was held, to be written now."""
        held, endpoint.held = endpoint.held, None
        self.joining.discard(endpoint)
        return held or []

    def find(self, peer_id: str) -> Endpoint | None:
        endpoint = self.by_peer.get(peer_id)
        if endpoint is not None and not endpoint.closing and peer_id not in self.resuming:
            return endpoint
        for joining in self.joining:
            if joining.peer_id == peer_id and not joining.closing:
                return joining
        return None

    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        """The backends' sink: each delivery to the connection holding its peer, in order."""
        encoded: dict[int, Any] = {}
        for delivery in deliveries:
            endpoint = self.find(delivery.peer_id)
            if endpoint is None:
                continue
            control = self.controls.get(delivery.event)
            if control is not None:
                await control(endpoint)
                continue
            if endpoint.held is not None:
                endpoint.held.append(delivery)
                continue
            endpoint.send_deliveries([delivery], encoded)
