"""Backends under test: the memory one and the Redis one, started alike.

``nodes`` makes backends that share one state: for memory that is one
backend; for Redis each call is another node on the same Redis (its own
node id, the test's own key prefix), as separate server processes would be.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol

import pytest

from signaling.backends.base import Backend, Delivery, Resumed
from signaling.backends.memory import MemoryBackend
from tests.helpers.bounded import within
from tests.helpers.redis_server import RedisServer, redis_available

NEEDS_REDIS = pytest.mark.skipif(
    not redis_available(), reason="redis-server is not installed (apt-get install redis-server)"
)
WAIT = 10.0


async def resume(backend: Backend, old: str, new: str) -> Resumed:
    """``resume`` then ``attach``: the whole of a resume that succeeds."""
    resumed = await backend.resume(old, new)
    kept, dropped = await backend.attach(resumed.peer_id)
    return replace(resumed, kept=[*resumed.kept, *kept], dropped=resumed.dropped + dropped)


class Recorder:
    """A sink that keeps what it is handed and lets a test wait for it."""

    def __init__(self) -> None:
        self.got: list[Delivery] = []
        self._changed = asyncio.Condition()
        self.then: Callable[[Sequence[Delivery]], Awaitable[None]] | None = None

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        async with self._changed:
            self.got.extend(deliveries)
            self._changed.notify_all()
        if self.then is not None:
            await self.then(deliveries)

    def to(self, peer_id: str, event: str | None = None) -> list[Delivery]:
        return [d for d in self.got if d.peer_id == peer_id and (event is None or d.event == event)]

    async def wait(self, peer_id: str, count: int, event: str | None = None) -> list[Delivery]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.to(peer_id, event)) >= count), WAIT
            )
        return self.to(peer_id, event)


class Node(Protocol):
    backend: Backend
    sink: Recorder


class StartedNode:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sink = Recorder()


class Nodes:
    def __init__(self, kind: str, redis_url: str | None, **options: Any) -> None:
        self.kind = kind
        self.redis_url = redis_url
        self.prefix = f"t{secrets.token_hex(4)}:"
        self.options = options
        self.started: list[StartedNode] = []
        self._memory: StartedNode | None = None

    async def __call__(self, **options: Any) -> StartedNode:
        if self.kind == "memory":
            if self._memory is None:
                self._memory = StartedNode(MemoryBackend(**{**self.options, **options}))
                await self._memory.backend.start(self._memory.sink)
                self.started.append(self._memory)
            return self._memory
        from signaling.backends.redis import RedisBackend

        assert self.redis_url is not None
        node = StartedNode(
            RedisBackend(self.redis_url, prefix=self.prefix, **{**self.options, **options})
        )
        await node.backend.start(node.sink)
        self.started.append(node)
        return node

    async def close(self) -> None:
        for n, node in enumerate(self.started):
            await within(node.backend.close(), f"closing {self.kind} backend node {n}")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=[pytest.mark.redis, NEEDS_REDIS]),
    ]
)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def nodes(backend_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    url = None
    if backend_kind == "redis":
        url = request.getfixturevalue("redis_server").url
    made = Nodes(backend_kind, url, mailbox_messages=5, mailbox_bytes=1000)
    yield made
    await made.close()


@pytest.fixture
async def redis_nodes(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    made = Nodes("redis", redis_server.url, resume_grace=1.0, node_ttl=1.0)
    yield made
    await made.close()
