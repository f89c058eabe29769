"""A peer's old connection ends after the peer was resumed on a new one
(docs/reliability.md, bug 7): on the other node, or on the same node while
the old connection's end was already under way. Its end must not act on the
resumed peer: no ``peer-left`` reaches a room-mate, and the peer can still be
signalled, also past the resume grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import NEEDS_REDIS, Connect
from tests.helpers.clients import RecordingClient
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import RunningServer, running_server
from tests.security.raw import EioWS

pytestmark = [pytest.mark.redis, NEEDS_REDIS]

GRACE = 3.0
FLAGS = ("--rate-limit", "0", "--resume-grace", f"{GRACE:g}", "--ping-interval", "2", "--ping-timeout", "2")
HOOK = Path(__file__).resolve().parent / "hold_disconnects"
LOST, LEFT = (4000).to_bytes(2, "big"), (1000).to_bytes(2, "big")  # websocket close codes


class Raw:
    """A raw Engine.IO websocket client: it answers pings only while kept alive."""

    def __init__(self, ws: EioWS) -> None:
        self.ws = ws
        self.reader: asyncio.Task[Any] | None = None

    @classmethod
    async def joined(cls, server: RunningServer, room: str, made: list[Raw]) -> tuple[Raw, dict[str, Any]]:
        ws = await EioWS.open(server)
        made.append(raw := cls(ws))
        await ws.sio_connect()
        ack = await ws.call("join", {"room": room})
        assert ack["ok"], ack
        return raw, ack

    def keep_alive(self) -> None:
        self.reader = asyncio.create_task(self.ws.answer_pings_until_end(120))

    async def silence(self) -> None:
        """Stop reading: pings go unanswered, the TCP connection stays open."""
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader

    async def close(self, code: bytes) -> None:
        await self.silence()
        await self.ws.send_raw(self.ws.frame(0x8, code))

    async def aclose(self) -> None:
        await self.silence()
        await self.ws.aclose()


@pytest.fixture
async def raws() -> AsyncIterator[list[Raw]]:
    made: list[Raw] = []
    yield made
    for raw in made:
        await raw.aclose()


@contextlib.asynccontextmanager
async def two_nodes(redis: RedisServer, hold_file: Path | None = None) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    env = None
    if hold_file is not None:
        path = os.pathsep.join(p for p in (str(HOOK), os.environ.get("PYTHONPATH")) if p)
        env = {"PYTHONPATH": path, "SIGNALING_TEST_HOLD_FILE": str(hold_file)}
    flags = ("--redis-url", redis.url, *FLAGS)
    async with running_server(*flags, env=env) as one, running_server(*flags) as two:
        yield one, two


async def room_with_old_connection(
    one: RunningServer, two: RunningServer, connect: Connect, raws: list[Raw]
) -> tuple[RecordingClient, Raw, str, Raw, dict[str, Any]]:
    """``mate`` on node two, a kept-alive sentinel and the old connection on node one,
    all in "room": (mate, sentinel, sentinel's peerId, old, old's join ack)."""
    mate = await connect(two.url)
    await mate.join("room")
    sentinel, ack_sentinel = await Raw.joined(one, "room", raws)
    sentinel.keep_alive()
    old, ack_old = await Raw.joined(one, "room", raws)
    return mate, sentinel, ack_sentinel["peerId"], old, ack_old


async def check_still_there(
    nodes: tuple[RunningServer, RunningServer], mate: RecordingClient, resumed: RecordingClient,
    peer_id: str, sentinel: Raw, sentinel_id: str,
) -> None:
    """``resumed`` holds ``peer_id`` live, now and past the grace; ``mate`` never heard it leave."""
    reply = await mate.request("signal", {"room": "room", "to": peer_id, "data": {"n": 1}})
    assert reply == {"ok": True}
    assert (await resumed.wait_for("signal"))[-1]["data"] == {"n": 1}
    # The sentinel's connection is lost after the old one's end: once its
    # peer-left arrives, a wrongly lost peer_id would have been told first.
    await sentinel.silence()
    sentinel.ws.close_transport(rst=True)
    left = await mate.wait_for("peer-left", timeout=GRACE + 15)
    assert [p["peerId"] for p in left] == [sentinel_id]
    reply = await mate.request("signal", {"room": "room", "to": peer_id, "data": {"n": 2}})
    assert reply == {"ok": True}
    assert (await resumed.wait_for("signal", 2))[-1]["data"] == {"n": 2}
    # No failure in the service or the backends. (A silent client's ping
    # deadline can race upstream's service task into an unrelated traceback.)
    for node in nodes:
        assert "signaling/service.py" not in node.log() and "signaling/backends" not in node.log(), node.log()


@pytest.mark.parametrize("code", [LOST, LEFT], ids=["lost", "left"])
async def test_old_connection_ending_while_its_peer_resumes_on_the_same_node(
    redis_server: RedisServer, connect: Connect, raws: list[Raw], tmp_path: Path, code: bytes
) -> None:
    """The old connection's end is seen first, but is held (by the test hook) until
    the resume on the same node has gone through the backend, before the new
    connection is bound: an end already awaiting the backend when the resume lands."""
    hold = tmp_path / "hold"
    hold.write_text("")
    async with two_nodes(redis_server, hold) as (one, two):
        mate, sentinel, sentinel_id, old, ack_old = await room_with_old_connection(one, two, connect, raws)
        peer_id = ack_old["peerId"]
        hold.write_text(peer_id)
        await old.close(code)
        await one.log_line(f"holding the end of {peer_id}", 15.0)
        await old.aclose()
        resumed = await connect(one.url)
        ack = await resumed.join("room", resume=ack_old["resumeToken"])
        assert ack["ok"] and ack["resumed"] is True and ack["peerId"] == peer_id
        await one.log_line(f"the end of {peer_id} is done", 15.0)
        await check_still_there((one, two), mate, resumed, peer_id, sentinel, sentinel_id)


@pytest.mark.parametrize("code", [None, LEFT], ids=["lost", "left"])
async def test_old_connection_ending_after_its_peer_resumed_on_the_other_node(
    redis_server: RedisServer, connect: Connect, raws: list[Raw], code: bytes | None
) -> None:
    """The client resumes on node two while its connection to node one is still
    open; then one ends the old connection: by its ping timeout (silent since it
    joined, as after a network switch: no FIN, pings unanswered), or by a close
    frame 1000 that comes late (left)."""
    async with two_nodes(redis_server) as (one, two):
        mate, sentinel, sentinel_id, old, ack_old = await room_with_old_connection(one, two, connect, raws)
        peer_id = ack_old["peerId"]
        if code is not None:
            old.keep_alive()  # until its late close frame; else silent from the start
        resumed = await connect(two.url)
        ack = await resumed.join("room", resume=ack_old["resumeToken"])
        assert ack["ok"] and ack["resumed"] is True and ack["peerId"] == peer_id
        if code is not None:
            await old.close(code)
        line = await one.log_line(f"disconnect {peer_id}", 15.0)
        assert ("left" if code else "ping timeout") in line
        await old.aclose()
        await check_still_there((one, two), mate, resumed, peer_id, sentinel, sentinel_id)
