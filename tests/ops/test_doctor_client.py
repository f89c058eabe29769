"""The doctor's own Socket.IO client against the real server: each transport, the upgrade,
pings answered, acks, events, a refused CONNECT and a clean close."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from signaling.auth import mint_token
from signaling.doctor_client import ClientError, SocketIOClient
from tests.helpers.bounded import within
from tests.helpers.server import running_server
from tests.ops.test_doctor import doctor, status

SECRET = "doctor-client-secret-0123456789abcdef"


@pytest.mark.parametrize(("transports", "lands_on"), [
    (["polling"], "polling"),
    (["websocket"], "websocket"),
    (["polling", "websocket"], "websocket"),
])
async def test_a_session_answers_pings_acks_and_events(transports: list[str], lands_on: str) -> None:
    async with running_server("--ping-interval", "1", "--ping-timeout", "1") as server:
        client = SocketIOClient(server.url)
        peer = SocketIOClient(server.url)
        try:
            await within(client.connect(transports, None, 10), "connect")
            await within(peer.connect(["polling"], None, 10), "the peer's connect")
            assert client.transport == lands_on and client.sid
            # A third ping only comes when the first two pongs were taken.
            for n in range(3):
                await within(client.pinged.wait(), f"ping {n + 1}")
                client.pinged.clear()
            got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            client.on("relay", lambda message: got.done() or got.set_result(message))
            mine = await client.call("join", {"room": "r"}, timeout=10)
            theirs = await peer.call("join", {"room": "r"}, timeout=10)
            assert mine["ok"] and theirs["ok"]
            ack = await peer.call("relay", {"room": "r", "to": mine["peerId"], "event": "e", "data": [1]},
                                  timeout=10)
            assert ack == {"ok": True, "delivered": 1}
            message = await within(got, "the relay")
            assert message["from"] == theirs["peerId"] and message["data"] == [1]
        finally:
            await within(client.disconnect(), "disconnect")
            await within(peer.disconnect(), "the peer's disconnect")
        line = await server.log_line(f"disconnect {mine['peerId']}")
        assert "client disconnect, left" in line
        with pytest.raises(ClientError):
            await client.emit("leave", {"room": "r"})


async def test_a_refused_connect_says_why() -> None:
    async with running_server("--auth-secret", SECRET) as server:
        for auth in (None, {"token": "not.a.jwt"}):
            client = SocketIOClient(server.url)
            try:
                with pytest.raises(ClientError, match="^unauthorized: "):
                    await within(client.connect(["polling"], auth, 10), "connect")
            finally:
                await within(client.disconnect(), "disconnect")
        client = SocketIOClient(server.url)
        try:
            token = mint_token(SECRET, ttl_seconds=60, now=time.time())
            await within(client.connect(["websocket"], {"token": token}, 10), "connect")
            assert client.connected
        finally:
            await within(client.disconnect(), "disconnect")


async def test_a_lost_server_ends_every_wait() -> None:
    async with running_server() as server:
        client = SocketIOClient(server.url)
        await within(client.connect(["polling"], None, 10), "connect")
    try:
        with pytest.raises((ClientError, TimeoutError)):
            await within(client.call("join", {"room": "r"}, timeout=10), "a call to a stopped server")
    finally:
        await within(client.disconnect(), "disconnect")


async def test_the_doctor_tells_a_missing_token_from_a_broken_proxy() -> None:
    async with running_server("--auth-secret", SECRET) as server:
        code, checks = await doctor(server.url)
        assert code == 1
        for name in ("polling", "websocket", "upgrade"):
            assert checks[name].startswith(f"FAIL  {name:<10} connect refused: unauthorized: "), checks[name]
            assert checks[name].endswith("Fix: pass --token with a JWT the server accepts")
        token = mint_token(SECRET, ttl_seconds=60, now=time.time())
        code, checks = await doctor(server.url, "--token", token)
    assert code == 0 and status(checks)["relay"] == "ok", checks
