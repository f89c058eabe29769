"""Two real server nodes (subprocesses) on one real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest

from tests.helpers.bounded import within
from tests.helpers.clients import RecordingClient
from tests.helpers.redis_server import RedisServer, redis_available

NEEDS_REDIS = pytest.mark.skipif(
    not redis_available(), reason="redis-server is not installed (apt-get install redis-server)"
)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.close()


Connect = Callable[[str], Awaitable[RecordingClient]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    made: list[RecordingClient] = []

    async def make(url: str) -> RecordingClient:
        client = await RecordingClient().connect(url)
        made.append(client)
        return client

    yield make
    for n, client in enumerate(made):
        if client.sio.connected:
            await within(client.disconnect(), f"disconnecting cluster test client {n}")


async def health(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as response:
        return response.status


async def wait_health(url: str, status: int, timeout: float = 15.0) -> None:
    """Wait until /healthz answers ``status`` (it follows the node's heartbeat)."""
    deadline = time.monotonic() + timeout
    while await health(url) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}/healthz never answered {status}")
        await asyncio.sleep(0.1)
