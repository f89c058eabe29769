"""Shared pieces of the security battery: one server per module, bystanders, probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.helpers.bounded import within
from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer, running_server
from tests.security.raw import EOF, EioWS, Ended, metric

# Short settings so that every timeout in the battery fits in seconds.
FAST_FLAGS = ("--ping-interval", "2", "--ping-timeout", "2", "--resume-grace", "1")


@dataclass
class Bystanders:
    """Two ordinary clients in a room of their own: 'others' traffic unaffected'."""

    a: RecordingClient
    b: RecordingClient
    b_id: str
    sent: int = 0

    async def still_fine(self, timeout: float = 2.0) -> None:
        self.sent += 1
        ack = await self.a.request("signal", {"room": "bystanders", "to": self.b_id,
                                              "data": {"n": self.sent}})
        assert ack == {"ok": True}
        got = await self.b.wait_for("signal", self.sent, timeout=timeout)
        assert got[-1]["data"] == {"n": self.sent}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def srv(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    flags = getattr(request.module, "SERVER_FLAGS", FAST_FLAGS)
    async with running_server(*flags) as server:
        yield server


async def _bystanders_of(srv: RunningServer) -> Bystanders:
    a = await RecordingClient().connect(srv.url)
    b = await RecordingClient().connect(srv.url, transports=["polling"])
    await a.join("bystanders")
    b_id = (await b.join("bystanders"))["peerId"]
    return Bystanders(a, b, b_id)


async def _close(pair: Bystanders) -> None:
    await within(pair.a.disconnect(), "disconnecting bystander a (websocket)")
    await within(pair.b.disconnect(), "disconnecting bystander b (polling)")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def _bystander_pairs(srv: RunningServer) -> AsyncIterator[list[Bystanders]]:
    pairs: list[Bystanders] = []
    yield pairs
    for pair in pairs:
        await _close(pair)


@pytest_asyncio.fixture(loop_scope="module")
async def bystanders(srv: RunningServer, _bystander_pairs: list[Bystanders]) -> Bystanders:
    """The module's bystander pair; a new one when the last test's pair was dropped.

    A test that cuts a bystander off fails in its own ``still_fine``; the
    tests after it (in whatever order xdist runs them) start with a pair
    that is connected, instead of failing one after another."""
    if not _bystander_pairs or not all(
        c.sio.connected for c in (_bystander_pairs[-1].a, _bystander_pairs[-1].b)
    ):
        _bystander_pairs.append(await _bystanders_of(srv))
    return _bystander_pairs[-1]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connected(server: RunningServer, auth: Any = None, **kwargs: Any) -> EioWS:
    """A raw websocket client past the Socket.IO connect."""
    ws = await EioWS.open(server, **kwargs)
    await ws.sio_connect(auth)
    return ws


async def until_end(ws: EioWS, timeout: float = 1.0) -> tuple[int | str, list[str | bytes]]:
    """Everything the server sends before it ends the connection, and how it ended."""
    got: list[str | bytes] = []
    try:
        while True:
            got.append(await ws.next_message(timeout))
    except Ended as end:
        return end.how, got
    except TimeoutError:
        raise AssertionError(f"still connected after {timeout} s; got {got!r}") from None


async def requests_total(server: RunningServer, http: aiohttp.ClientSession) -> float:
    return await metric(server, "signaling_requests_total", http)


async def assert_dropped(ws: EioWS, server: RunningServer, http: aiohttp.ClientSession,
                         before: float, timeout: float = 1.0) -> None:
    """The X condition: disconnected within ``timeout`` and no app handler ran."""
    how, got = await until_end(ws, timeout)
    assert how == EOF or isinstance(how, int), how
    assert got == [], f"the server answered before dropping: {got!r}"
    assert await requests_total(server, http) == before, "a request handler ran"
    await ws.aclose()
