"""v1.1 ``update`` across two nodes on one real redis-server."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import NEEDS_REDIS, Connect
from tests.cluster.test_two_nodes import nodes
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.redis, NEEDS_REDIS]


async def test_update_reaches_the_other_node_and_later_joins(redis_server: RedisServer, connect: Connect) -> None:
    one_cm, two_cm = nodes(redis_server)
    async with one_cm as one, two_cm as two:
        a, b = await connect(one.url), await connect(two.url)
        ack_a = await a.join("room", meta={"v": 1})
        await b.join("room")
        assert await a.request("update", {"room": "room", "meta": {"v": 2}}) == {"ok": True}
        assert await b.wait_for("peer-updated") == [{"room": "room", "peerId": ack_a["peerId"], "meta": {"v": 2}}]
        c = await connect(two.url)
        ack_c = await c.join("room")
        assert {p["peerId"]: p["meta"] for p in ack_c["peers"]}[ack_a["peerId"]] == {"v": 2}
        reply = await b.request("update", {"room": "elsewhere", "meta": {}})
        assert reply["ok"] is False and reply["error"]["code"] == "not-in-room"
        await a.request("leave", {"room": "room"})
        await b.wait_for("peer-left")
        # a peer that left cannot bring its meta back into the room
        reply = await a.request("update", {"room": "room", "meta": {"v": 3}})
        assert reply["error"]["code"] == "not-in-room"
        ack_d = await (await connect(one.url)).join("room")
        assert ack_a["peerId"] not in {p["peerId"] for p in ack_d["peers"]}
