"""L6, bug 6: after the full L6, peers still counted once every client had left.

Cause, on the client side: python-engineio 4.15.1's ``AsyncClient`` drops
what ``disconnect()`` queues (the Socket.IO DISCONNECT ``41`` and the
Engine.IO close ``1``) when a polling POST is still in flight: its write loop
sends nothing more once the state is no longer ``connected``. On polling the
ack of ``leave`` comes back on the long-poll GET, often before the response
of the POST that carried the request, so a client that leaves and then
disconnects at once says no goodbye. It waits for its next GET (the
server's next PING, up to 25 s) and goes silent; the server, never told,
counts the connection lost after the ping timeout (20 s) and keeps the peer
for the resume grace (15 s), as the contract says. The soak waited 30 s.

Here the response of the ``leave`` POST is held until the client has its
ack, so the race is taken every time: the L6 load generator's ``leave`` and
``RecordingClient.disconnect`` must still end the peer at once as ``left``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import socketio

from bench.soak_load import Client, Stats
from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer, running_server

from .support import until

# Short pings, so that a client that said no goodbye is gone from its side soon
# (it waits for the next PING); the peer is still kept for the 15 s grace.
FLAGS = ("--ping-interval", "3", "--ping-timeout", "3", "--log-level", "info")
GONE_WITHIN = 8.0  # well under ping timeout + resume grace

Leaving = tuple[socketio.AsyncClient, str, Callable[[], Awaitable[None]]]
"""A joined polling client, its peerId, and how it leaves and disconnects."""


class HeldPost:
    """Holds the response of the client's POST that carries ``leave`` until ``release``."""

    def __init__(self, sio: socketio.AsyncClient) -> None:
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        eio = sio.eio
        send = eio._send_request
        armed = True

        async def held(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal armed
            response = await send(method, url, *args, **kwargs)
            if method == "POST" and armed and '"leave"' in str(kwargs.get("body")):
                armed = False
                self.holding.set()
                await self.release.wait()
            return response

        eio._send_request = held


def release_on_leave_ack(sio: socketio.AsyncClient, held: HeldPost) -> None:
    """Let the held POST answer once the client's code has the ``leave`` ack."""
    call = sio.call

    async def acked(event: str, *args: Any, **kwargs: Any) -> Any:
        reply = await call(event, *args, **kwargs)
        if event == "leave":
            # The caller goes on (to disconnect) before the write loop resumes.
            held.release.set()
        return reply

    sio.call = acked


async def gauges(server: RunningServer) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        text = await response.text()
    return {
        name: float(value)
        for name, value in re.findall(
            r"^signaling_(connected_clients|rooms|peers) (\S+)$", text, re.MULTILINE
        )
    }


async def soak_client(server: RunningServer) -> Leaving:
    """The L6 load generator's client (bench/soak_load.py)."""
    client = Client(Stats(), ["polling"])
    assert await client.connect(server.url)
    assert await client.join("l6")
    return client.sio, client.peer_id, client.leave


async def recording_client(server: RunningServer) -> Leaving:
    """The tests' client (tests/helpers/clients.py)."""
    client = await RecordingClient().connect(server.url, transports=["polling"])
    peer_id = (await client.join("l6"))["peerId"]

    async def leave() -> None:
        await client.request("leave", {"room": "l6"})
        await client.disconnect()

    return client.sio, peer_id, leave


@pytest.mark.parametrize(
    "make", [soak_client, recording_client], ids=["soak-client", "recording-client"]
)
async def test_leave_then_disconnect_with_the_post_in_flight_is_a_goodbye(
    make: Callable[[RunningServer], Awaitable[Leaving]],
) -> None:
    async with running_server(*FLAGS) as server:
        sio, peer_id, leave = await make(server)
        held = HeldPost(sio)
        release_on_leave_ack(sio, held)
        leaving = asyncio.create_task(leave())
        try:
            await asyncio.wait_for(held.holding.wait(), 10)  # the race is on
            last: dict[str, float] = {}

            async def poll() -> None:
                nonlocal last
                while True:
                    last = await gauges(server)
                    if last and not any(last.values()):
                        return
                    await asyncio.sleep(0.05)

            try:
                await asyncio.wait_for(poll(), GONE_WITHIN)
            except TimeoutError:
                pytest.fail(
                    f"peer still counted {GONE_WITHIN:g} s after leave + disconnect: {last}\n"
                    + server.log()
                )
            goodbye = f"disconnect {peer_id} (client disconnect, left)"
            await until(lambda: goodbye in server.log(), 5)
            await asyncio.wait_for(leaving, 10)
        finally:
            if not leaving.done():
                leaving.cancel()
                await asyncio.gather(leaving, return_exceptions=True)
            if sio.connected:
                await sio.disconnect()
        assert held.release.is_set()
        assert "(ping timeout, lost)" not in server.log()
