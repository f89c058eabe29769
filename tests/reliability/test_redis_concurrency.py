"""L7 in small: many requests in flight at once on one node of a Redis pair.

Found by the short L7 soak (``python -m bench.soak --scenario L7``): with 200
clients per node, requests failed with ``unavailable`` (the node logged
``redis lost ...: Too many connections``) and clients were dropped as if they
had sent "undecodable Socket.IO packet"s, so relays acked as delivered to
them were lost without their senders knowing.

Two causes, both outside this directory:

- signaling/backends/redis.py (``aioredis.Redis.from_url``): redis-py 8's
  default pool is non-blocking with at most 100 connections; the 101st
  concurrent command raises ``ConnectionError("Too many connections")``.
  A ``BlockingConnectionPool`` (wait for a free connection) fixes it.
- signaling/gateway.py (formerly socketio_adapter ``_handle_eio_message``): every exception
  raised while a request is handled, the backend's included, is taken for a
  client that broke the protocol, and the client is dropped.

Here 150 clients on node A each put 10 relays in flight at once, to
partners on node B (requests of one connection are handled one at a time,
so it takes over 100 connections): every one must be acked ``delivered: 1`` and arrive, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.redis_server import RedisServer, redis_available
from tests.helpers.server import running_server

PAIRS = 150
IN_FLIGHT = 10

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not redis_available(), reason="redis-server is not installed"),
]


async def test_hundreds_of_requests_in_flight_across_nodes() -> None:
    redis = RedisServer()
    redis.start()
    try:
        flags = ("--redis-url", redis.url, "--rate-limit", "0")
        async with running_server(*flags) as node_a, running_server(*flags) as node_b:
            senders = list(await asyncio.gather(
                *(RecordingClient().connect(node_a.url) for _ in range(PAIRS))))
            receivers = list(await asyncio.gather(
                *(RecordingClient().connect(node_b.url) for _ in range(PAIRS))))
            try:
                joined = await asyncio.gather(
                    *(s.join(f"l7-{i}") for i, s in enumerate(senders)),
                    *(r.join(f"l7-{i}") for i, r in enumerate(receivers)))
                refused = [a["error"]["code"] for a in joined if not a["ok"]]
                assert refused == [], f"{len(refused)} joins refused: {sorted(set(refused))}"

                async def burst(sender: RecordingClient, room: str) -> list[Any]:
                    ack = await sender.join(room)
                    assert ack.get("peers"), ack
                    to = ack["peers"][0]["peerId"]
                    return await asyncio.gather(*(
                        sender.request("relay", {"room": room, "to": to, "event": "n",
                                                 "data": {"n": n}})
                        for n in range(IN_FLIGHT)))

                acks = await asyncio.gather(*(burst(s, f"l7-{i}") for i, s in enumerate(senders)))
                codes = [a.get("error", {}).get("code") for per in acks for a in per if not a["ok"]]
                assert codes == [], f"{len(codes)} failed: {sorted(set(codes))}"
                for receiver in receivers:
                    got = await receiver.wait_for("relay", IN_FLIGHT, timeout=20)
                    assert [m["data"]["n"] for m in got] == list(range(IN_FLIGHT))
                assert "undecodable" not in node_a.log() + node_b.log()
            finally:
                await asyncio.gather(*(c.disconnect() for c in senders + receivers))
    finally:
        redis.close()
