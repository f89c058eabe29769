"""``--redis-prefix``: two deployments in one Redis database share nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from tests.cluster.conftest import NEEDS_REDIS, Connect
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server

pytestmark = [pytest.mark.redis, NEEDS_REDIS]


async def test_two_deployments_in_one_database_do_not_share_rooms(redis_server: RedisServer, connect: Connect) -> None:
    """Before, every node used the same fixed keys: a peer of one deployment
    saw (and could signal) the other's peers in a room of the same name."""
    base = ("--redis-url", redis_server.url, "--rate-limit", "0")
    async with (
        running_server(*base, "--redis-prefix", "blue") as blue,
        running_server(*base, "--redis-prefix", "green") as green,
        running_server(*base, "--redis-prefix", "blue") as blue2,
    ):
        a, b, c = await connect(blue.url), await connect(green.url), await connect(blue2.url)
        ack_a = await a.join("same")
        ack_b = await b.join("same")
        assert ack_a["ok"] and ack_b["ok"] and ack_b["peers"] == []
        refused = await b.request("signal", {"room": "same", "to": ack_a["peerId"], "data": {}})
        assert refused["error"]["code"] == "unknown-peer"
        ack_c = await c.join("same")  # the same deployment on another node does share
        assert [p["peerId"] for p in ack_c["peers"]] == [ack_a["peerId"]]
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            keys = [k.decode() for k in await client.keys("*")]
        finally:
            await client.aclose()
        assert keys and all(k.startswith(("blue:", "green:")) for k in keys)
        assert any(k.startswith("green:room:same") for k in keys)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "a/b"])
def test_a_bad_prefix_exits_2_naming_the_flag(bad: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signaling", "--redis-prefix", bad],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2 and "--redis-prefix" in done.stderr
