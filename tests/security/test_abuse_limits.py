"""v1.1 abuse limits on the real server: rooms per connection and bytes per second."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import running_server

Make = Callable[[], Awaitable[RecordingClient]]


@pytest.fixture
async def limited() -> AsyncIterator[tuple[str, Make]]:
    # 1,000 bytes/s (burst 2,000), 3 rooms; the request-count limit out of the way
    async with running_server("--rate-limit", "0", "--rate-limit-bytes", "1000",
                              "--max-rooms-per-connection", "3") as server:
        made: list[RecordingClient] = []

        async def make() -> RecordingClient:
            client = await RecordingClient().connect(server.url)
            made.append(client)
            return client

        yield server.url, make
        for client in made:
            await client.disconnect()


def code(reply: dict[str, object]) -> object:
    assert reply["ok"] is False, reply
    return reply["error"]["code"]  # type: ignore[index]


async def test_rooms_per_connection(limited: tuple[str, Make]) -> None:
    _, make = limited
    a, watcher = await make(), await make()
    await watcher.join("r4")
    for room in ("r1", "r2", "r3"):
        assert (await a.join(room))["ok"]
    assert (await a.join("r2"))["ok"]  # a re-join is not counted
    assert code(await a.join("r4")) == "too-many-rooms"
    assert not watcher.received["peer-joined"]  # the refused join changed nothing
    assert (await a.request("leave", {"room": "r1"}))["ok"]
    assert (await a.join("r4"))["ok"]
    assert (await watcher.wait_for("peer-joined"))[0]["room"] == "r4"


async def send_until_refused(client: RecordingClient, body: dict[str, object], tries: int) -> tuple[int, float]:
    start = time.monotonic()
    accepted = 0
    for _ in range(tries):
        reply = await client.request("relay", body)
        if not reply["ok"]:
            assert code(reply) == "rate-limited"
            break
        accepted += 1
    return accepted, time.monotonic() - start


async def test_bytes_are_charged_per_receiver(limited: tuple[str, Make]) -> None:
    _, make = limited
    sender, *receivers = [await make() for _ in range(4)]
    ids = [(await c.join("room"))["peerId"] for c in receivers]
    await sender.join("room")
    data = "x" * 598  # 600 bytes as JSON
    # Room-wide to 3 peers: 1,800 bytes each. Burst 2,000: one, the level is
    # still above zero (200), a second, then refused until it is paid back.
    accepted, took = await send_until_refused(sender, {"room": "room", "event": "e", "data": data}, 6)
    assert accepted <= 2 + int(took * 1000 / 1800) + 1, (accepted, took)
    assert accepted >= 2
    got = await receivers[0].wait_for("relay", accepted)
    assert len(got) == accepted  # refused ones were delivered to nobody
    # The same bytes to one peer cost a third: a fresh connection sends at least 4.
    other = await make()
    await other.join("room")
    accepted_one, _ = await send_until_refused(other, {"room": "room", "event": "e", "data": data, "to": ids[0]}, 8)
    assert accepted_one >= 4, accepted_one


async def test_a_refused_request_for_bytes_is_counted_in_metrics(limited: tuple[str, Make]) -> None:
    import aiohttp

    url, make = limited
    a, b = await make(), await make()
    await a.join("m")
    b_id = (await b.join("m"))["peerId"]
    big = {"k": "y" * 60_000}  # a 60 KB signal: the first is admitted, the next refused
    assert (await a.request("signal", {"room": "m", "to": b_id, "data": big}))["ok"]
    assert code(await a.request("signal", {"room": "m", "to": b_id, "data": big})) == "rate-limited"
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    assert 'signaling_requests_total{event="signal",outcome="rate-limited"} 1.0' in text


async def test_bytes_limit_off_with_zero() -> None:
    async with running_server("--rate-limit", "0", "--rate-limit-bytes", "0") as server:
        a, b = await RecordingClient().connect(server.url), await RecordingClient().connect(server.url)
        try:
            await a.join("z")
            await b.join("z")
            for _ in range(70):  # 70 MB: past the 64 MiB burst any positive limit allows
                assert (await a.request("relay", {"room": "z", "event": "e", "data": b"\0" * 1_000_000}))["ok"]
        finally:
            await a.disconnect()
            await b.disconnect()
