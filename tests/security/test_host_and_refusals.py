"""DNS rebinding guard, refused connects counted and their log throttled, /healthz
naming no host (issue 13), on the real server."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
import socketio

from signaling.origins import HostPolicy, host_name
from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer, running_server


async def get(url: str, path: str, host: str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, str]:
    extra = {**({"Host": host} if host else {}), **(headers or {})}
    async with aiohttp.ClientSession() as http, http.get(url + path, headers=extra) as response:
        return response.status, await response.text()


def refused(metrics: str, reason: str) -> float:
    prefix = f'signaling_refused_connections_total{{reason="{reason}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


async def test_loopback_server_refuses_a_rebound_host(server: RunningServer) -> None:
    port = server.port
    evil = f"evil.example:{port}"
    # A rebinding page is its own origin: Origin and Host both name evil.example.
    handshake = "/socket.io/?EIO=4&transport=polling"
    status, text = await get(server.url, handshake, evil, {"Origin": f"http://{evil}"})
    assert status == 403 and "--allowed-hosts" in text
    status, _ = await get(server.url, handshake, evil)  # same-origin GETs carry no Origin
    assert status == 403
    assert (await get(server.url, "/healthz", evil))[0] == 403
    assert (await get(server.url, "/static/rtc-peer.js", evil))[0] == 403
    ws_headers = {"Origin": f"http://{evil}", "Upgrade": "websocket", "Connection": "Upgrade",
                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    status, _ = await get(server.url, "/socket.io/?EIO=4&transport=websocket", evil, ws_headers)
    assert status == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LocalHost:{port}", "127.0.0.2"):
        assert (await get(server.url, "/healthz", host))[0] == 200, host
    status, _ = await get(server.url, handshake, f"localhost:{port}", {"Origin": f"http://localhost:{port}"})
    assert status == 200
    metrics = (await get(server.url, "/metrics"))[1]
    assert refused(metrics, "host") == 5


@pytest.mark.parametrize(("flag", "answered"), [("signal.example", True), ("*", True), ("other.example", False)])
async def test_allowed_hosts_widens_it(flag: str, answered: bool) -> None:
    async with running_server("--allowed-hosts", flag) as server:
        status, _ = await get(server.url, "/healthz", f"signal.example:{server.port}")
        assert (status == 200) is answered
        assert (await get(server.url, "/healthz", "evil.example"))[0] == (200 if flag == "*" else 403)


def test_host_policy_only_on_loopback() -> None:
    assert HostPolicy("0.0.0.0", None)("evil.example")  # public listener: any name
    assert HostPolicy("::1", None)("[::1]:8080") and not HostPolicy("::1", None)("evil.example")
    assert not HostPolicy("localhost", None)("localhost.evil.example")
    assert not HostPolicy("127.0.0.1", None)("127.0.0.1.evil.example")
    assert HostPolicy("127.0.0.1", None)(None)  # no Host header: not a browser
    assert host_name("[::1") is None and host_name("Example.COM.:80") == "example.com"


async def test_refused_connects_are_counted_and_logged_at_most_once_a_second() -> None:
    async with running_server("--auth-secret", "x" * 32) as server:
        start = time.monotonic()
        for _ in range(30):
            client = socketio.AsyncClient(reconnection=False)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(server.url, transports=["websocket"], auth={"token": "bad"},
                                     wait_timeout=10)
            await client.disconnect()
        took = time.monotonic() - start
        origin = {"Origin": "http://evil.example"}
        for _ in range(10):
            assert (await get(server.url, "/socket.io/?EIO=4&transport=polling", headers=origin))[0] == 400
        metrics = (await get(server.url, "/metrics"))[1]
        assert refused(metrics, "unauthorized") == 30 and refused(metrics, "origin") == 10
        lines = [line for line in server.stderr_lines if "refused connection" in line]
        assert 1 <= len(lines) <= int(time.monotonic() - start) + 2, (took, lines)
        # The next line, a second later at the soonest, says how many were left out.
        deadline = time.monotonic() + 10
        while not any("more refused since the last such line" in line for line in server.stderr_lines):
            assert time.monotonic() < deadline, server.log()
            assert (await get(server.url, "/socket.io/?EIO=4&transport=polling", headers=origin))[0] == 400
        lines = [line for line in server.stderr_lines if "refused connection" in line]
        assert len(lines) <= int(time.monotonic() - start) + 2, lines


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_healthz_says_what_is_wrong_without_naming_the_host() -> None:
    port = closed_port()
    async with running_server("--redis-url", f"redis://127.0.0.1:{port}/0") as server:
        status, text = 0, ""
        for _ in range(100):  # until the first connection attempt has failed
            status, text = await get(server.url, "/healthz")
            if "cannot reach" in text:
                break
            await asyncio.sleep(0.1)
        assert status == 503 and "Redis" in text and "connection refused" in text, text
        assert "127.0.0.1" not in text and str(port) not in text, text
        assert f"127.0.0.1:{port}" in server.log()  # the operator's log has it
