"""Shared pieces of the operations tests: an admin HTTP client and a webhook receiver."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.cluster.conftest import connect, redis_server  # noqa: F401 (fixtures reused here)
from tests.interop.conftest import node_client_dir  # noqa: F401 (fixture reused here)
from tests.ops.deploy import Certificate, make_certificate
from tests.web.conftest import browser, shared_chromium  # noqa: F401 (fixtures reused here)

TOKEN = "admin-token-for-tests-0123456789"
WAIT = 10.0


class Admin:
    """Calls the admin API of one node."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None = TOKEN) -> None:
        self.http, self.url, self.token = http, url, token

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        headers.update(kwargs.pop("headers", {}))
        async with self.http.request(method, self.url + path, json=body, headers=headers, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Receiver:
    """A real webhook endpoint on loopback that keeps every POST (body, headers)."""

    def __init__(self) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = asyncio.Condition()
        self.status = 200  # what it answers; 500 makes the sender retry
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self.arrived:
            self.posts.append((body, dict(request.headers)))
            self.arrived.notify_all()
        return web.Response(status=self.status)

    async def wait_for(self, test: Callable[[list[tuple[bytes, dict[str, str]]]], bool],
                       timeout: float = WAIT) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: test(self.posts)), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


Until = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    """Poll ``check`` (bounded) until it holds: for state read over HTTP."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.05)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway certificate")
    return make_certificate(tmp_path)

