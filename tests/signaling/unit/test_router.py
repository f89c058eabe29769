"""The router: deliveries to the connection holding a peer, held behind a join's ack."""

from __future__ import annotations

from typing import Any

from signaling.backends.base import Delivery
from signaling.router import Router


class Endpoint:
    def __init__(self, peer_id: str) -> None:
        self.id = peer_id
        self.held: list[Delivery] | None = None
        self.closing = False
        self.sent: list[Delivery] = []

    @property
    def peer_id(self) -> str:
        return self.id

    def send_deliveries(self, deliveries: list[Delivery], encoded: dict[int, Any]) -> None:
        self.sent += deliveries


def d(peer: str, n: int) -> Delivery:
    return Delivery(peer, "signal", {"n": n})


async def test_delivers_to_the_bound_connection_in_order() -> None:
    router, a, b = Router(), Endpoint("a"), Endpoint("b")
    router.bind(a)
    router.bind(b)
    await router.deliver([d("a", 1), d("b", 2), d("a", 3), d("nobody", 4)])
    assert [x.payload["n"] for x in a.sent] == [1, 3] and [x.payload["n"] for x in b.sent] == [2]


async def test_held_behind_the_join_then_released() -> None:
    router, a = Router(), Endpoint("a")
    router.bind(a)
    router.hold(a)
    await router.deliver([d("a", 1), d("a", 2)])
    assert a.sent == [] and a.held is not None and len(a.held) == 2
    assert [x.payload["n"] for x in router.release(a)] == [1, 2]
    assert a.held is None and not router.joining


async def test_a_resuming_connection_is_found_among_joins_in_flight() -> None:
    """Its peer id changed mid-join (a resume): not bound yet, found by its join."""
    router, old, new = Router(), Endpoint("p"), Endpoint("fresh")
    router.bind(old)
    old.closing = True
    router.hold(new)
    new.id = "p"  # the service switched the session to the resumed peer
    await router.deliver([d("p", 1)])
    assert old.sent == [] and new.held == [d("p", 1)]


async def test_bind_replaces_and_unbind_only_forgets_its_own() -> None:
    router, first, second = Router(), Endpoint("p"), Endpoint("p")
    assert router.bind(first) is None
    assert router.bind(second) is first
    router.unbind(first)  # no longer the peer's: nothing changes
    assert router.by_peer["p"] is second
    router.unbind(second)
    assert not router.by_peer
