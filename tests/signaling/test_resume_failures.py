"""A failed resume changes nothing about the peer it tried (issue 13), end to end,
on one node of each backend and across two Redis nodes.

The resume is made to fail by joining one room too many (``too-many-rooms``)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.cluster.conftest import NEEDS_REDIS, redis_server  # noqa: F401 (fixture reused here)
from tests.helpers.bounded import within
from tests.helpers.clients import RecordingClient
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import running_server
from tests.signaling.test_resume import kill, spawn_child

FLAGS = ("--rate-limit", "0", "--rate-limit-bytes", "0", "--max-rooms-per-connection", "1")


@pytest.fixture(params=["memory", pytest.param("redis", marks=[pytest.mark.redis, NEEDS_REDIS])])
def backend(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The flags that choose the backend."""
    if request.param == "memory":
        return ()
    return ("--redis-url", request.getfixturevalue("redis_server").url)


async def resume_code(url: str, token: str) -> str:
    """The error code of a resume into one room too many."""
    c = await RecordingClient().connect(url)
    try:
        reply = await c.join("elsewhere", resume=token)
    finally:
        await within(c.disconnect(), "a resuming client to disconnect")
    assert reply["ok"] is False, reply
    return str(reply["error"]["code"])


async def failed_resume(url: str, token: str) -> None:
    assert await resume_code(url, token) == "too-many-rooms"


async def test_failed_resume_keeps_the_dropped_count(backend: tuple[str, ...]) -> None:
    async with running_server(*FLAGS, *backend, "--resume-grace", "60") as server:
        b = await RecordingClient().connect(server.url)
        await b.join("r")
        child, ack = await spawn_child(server, "r")
        await kill(child)
        await server.log_line(f"disconnect {ack['peerId']}")
        blob = b"\x01" * 1_000_000
        for n in range(6):  # 6 MB for a 4 MiB mailbox: the 2 oldest dropped
            reply = await b.request("relay", {"room": "r", "event": "n", "data": {"n": n, "b": blob}})
            assert reply == {"ok": True, "delivered": 1}
        await failed_resume(server.url, ack["resumeToken"])
        a2 = await RecordingClient().connect(server.url)
        resumed = await a2.join("r", resume=ack["resumeToken"])
        assert resumed["resumed"] is True and resumed["dropped"] == 2, resumed
        relays = await a2.wait_for("relay", 4)
        assert [r["data"]["n"] for r in relays] == [2, 3, 4, 5]
        await a2.disconnect()
        await b.disconnect()


async def test_failed_resumes_do_not_extend_the_grace(backend: tuple[str, ...]) -> None:
    async with running_server(*FLAGS, *backend, "--resume-grace", "3") as server:
        b = await RecordingClient().connect(server.url)
        await b.join("r")
        child, ack = await spawn_child(server, "r")
        await kill(child)
        await server.log_line(f"disconnect {ack['peerId']}")

        stop = asyncio.Event()
        codes: list[str] = []

        async def keep_failing() -> None:
            # Each one used to restart the 3 s grace. Not cancelled mid-way: a
            # client left connecting or connected would outlive the test.
            while not stop.is_set():
                codes.append(await resume_code(server.url, ack["resumeToken"]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)

        attempts = asyncio.create_task(keep_failing())
        try:
            left = await b.wait_for("peer-left", timeout=15)
        finally:
            stop.set()
            await within(attempts, "the failing resumes to stop")
        assert left == [{"room": "r", "peerId": ack["peerId"], "reason": "disconnected"}]
        # failing, until the grace (not extended) ran out
        assert codes[0] == "too-many-rooms" and set(codes) <= {"too-many-rooms", "resume-expired"}
        await b.disconnect()


@NEEDS_REDIS
@pytest.mark.redis
async def test_failed_resume_on_another_node_keeps_mail_and_count(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    flags = (*FLAGS, "--redis-url", redis_server.url, "--resume-grace", "60")
    async with running_server(*flags) as one, running_server(*flags) as two:
        b = await RecordingClient().connect(one.url)
        await b.join("r")
        child, ack = await spawn_child(one, "r")
        await kill(child)
        await one.log_line(f"disconnect {ack['peerId']}")
        blob = b"\x01" * 1_000_000
        for n in range(6):  # 6 MB for a 4 MiB mailbox: the 2 oldest dropped
            reply = await b.request("relay", {"room": "r", "event": "n", "data": {"n": n, "b": blob}})
            assert reply == {"ok": True, "delivered": 1}
        await failed_resume(two.url, ack["resumeToken"])
        reply = await b.request("relay", {"room": "r", "event": "n", "data": {"n": 6, "b": b""}})
        assert reply == {"ok": True, "delivered": 1}  # kept after the others
        a2 = await RecordingClient().connect(one.url)
        resumed = await a2.join("r", resume=ack["resumeToken"])
        assert resumed["resumed"] is True and resumed["dropped"] == 2, resumed
        relays = await a2.wait_for("relay", 5)
        assert [r["data"]["n"] for r in relays] == [2, 3, 4, 5, 6]
        await a2.disconnect()
        await b.disconnect()
