"""The command line, the environment, clean stops, and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import aiohttp
import pytest

from signaling.cli import parse_settings
from tests.helpers.clients import RecordingClient
from tests.helpers.server import ROOT, RunningServer, running_server


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signaling", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=30, env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--port", "http"], "--port"),
        (["--port", "70000"], "--port"),
        (["--max-peers-per-room", "0"], "--max-peers-per-room"),
        (["--rate-limit", "-1"], "--rate-limit"),
        (["--resume-grace", "soon"], "--resume-grace"),
        (["--log-level", "loud"], "--log-level"),
        (["--redis-url", "http://x"], "--redis-url"),
        (["--stun", "http://x"], "--stun"),
        (["--turn-url", "turn:t.example"], "--turn-url"),
        (["--allowed-origins", "not an origin"], "--allowed-origins"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--max-rooms-per-connection", "0"], "--max-rooms-per-connection"),
        (["--max-rooms-per-connection", "many"], "--max-rooms-per-connection"),
        (["--rate-limit-bytes", "-1"], "--rate-limit-bytes"),
        (["--rate-limit-bytes", "1.5"], "--rate-limit-bytes"),
    ],
)
def test_bad_flag_exits_2_naming_it(args: list[str], flag: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert flag in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["--max-relay-bytes", "999999999999"], "expected 1 byte to 512 MiB, got 999999999999"),
        (["--rate-limit-bytes", "99999999999999"], "expected 0 bytes to 64 GiB"),
        (["--max-peers-per-room", "1000000"], "expected 1 to 100,000"),
        (["--rate-limit", "1e9"], "expected 0 to 1,000,000 requests/s"),
        (["--resume-grace", "100000"], "expected 0 to 86,400 seconds"),
    ],
)
def test_range_errors_use_plain_numbers(args: list[str], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "e+" not in done.stderr


def test_bad_environment_value_names_the_flag() -> None:
    done = run_cli(env={"SIGNALING_MAX_RELAY_BYTES": "lots"})
    assert done.returncode == 2 and "SIGNALING_MAX_RELAY_BYTES" in done.stderr
    assert "--max-relay-bytes" in done.stderr


def test_environment_and_flags() -> None:
    env = {
        "SIGNALING_PORT": "9001", "SIGNALING_STUN": "stun:a.example:3478, stun:b.example",
        "SIGNALING_RATE_LIMIT": "5", "SIGNALING_ALLOWED_ORIGINS": "https://a.example,https://b.example",
    }
    settings = parse_settings(["--rate-limit", "7"], env)
    assert settings.port == 9001 and settings.rate_limit == 7  # the flag wins
    assert settings.stun == ("stun:a.example:3478", "stun:b.example")
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    defaults = parse_settings([], {})
    assert (defaults.host, defaults.port, defaults.max_peers_per_room, defaults.max_relay_bytes) == (
        "127.0.0.1", 8080, 16, 1048576)
    assert (defaults.rate_limit, defaults.resume_grace, defaults.ping_interval, defaults.ping_timeout) == (
        100, 15, 25, 20)
    assert defaults.redis_url is None and defaults.auth_secret is None and defaults.turn_ttl == 86400
    assert (defaults.max_rooms_per_connection, defaults.rate_limit_bytes) == (32, 33554432)
    env_v11 = {"SIGNALING_MAX_ROOMS_PER_CONNECTION": "5", "SIGNALING_RATE_LIMIT_BYTES": "0"}
    v11 = parse_settings([], env_v11)
    assert (v11.max_rooms_per_connection, v11.rate_limit_bytes) == (5, 0)


def test_console_script_help() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for flag in ("--host", "--redis-url", "--turn-secret", "--resume-grace", "--log-level"):
        assert flag in done.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_stops_cleanly_with_clients_connected(signum: int) -> None:
    async with running_server() as server:
        client = await RecordingClient().connect(server.url)
        polling = await RecordingClient().connect(server.url, transports=["polling"])
        await client.join("r")
        await polling.join("r")
        server.process.send_signal(signum)
        code = await asyncio.wait_for(server.process.wait(), 5)
        assert code == 0
        assert "Traceback" not in server.log()
        await client.disconnect()
        await polling.disconnect()


async def test_healthz_and_metrics(server: RunningServer) -> None:
    a = await RecordingClient().connect(server.url)
    b = await RecordingClient().connect(server.url)
    try:
        await a.join("m")
        ack = await b.join("m")
        await a.request("signal", {"room": "m", "to": ack["peerId"], "data": {"x": 1}})
        await a.request("relay", {"room": "m", "event": "e", "data": b"12345"})
        await a.request("leave", {"room": "nope"})
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/healthz") as response:
                assert response.status == 200 and await response.json() == {"status": "ok"}
            async with http.get(f"{server.url}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
        lines = set(text.splitlines())
        assert "signaling_connected_clients 2.0" in lines
        assert "signaling_rooms 1.0" in lines and "signaling_peers 2.0" in lines
        assert 'signaling_requests_total{event="join",outcome="ok"} 2.0' in lines
        assert 'signaling_requests_total{event="leave",outcome="not-in-room"} 1.0' in lines
        assert 'signaling_relayed_messages_total{kind="signal"} 1.0' in lines
        assert 'signaling_relayed_messages_total{kind="relay"} 1.0' in lines
        assert "signaling_relayed_bytes_total 12.0" in lines  # {"x":1} is 7 bytes, then 5 of binary
        assert any(line.startswith("signaling_event_loop_lag_seconds ") for line in lines)
    finally:
        await a.disconnect()
        await b.disconnect()


async def test_demo_pages_and_client_module(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/") as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        async with http.get(f"{server.url}/static/rtc-peer.js") as response:
            assert response.status == 200
            assert "javascript" in response.headers["Content-Type"]
            assert "Peer" in await response.text()
        async with http.get(f"{server.url}/static/../signaling/cli.py") as response:
            assert response.status in (403, 404)
        async with http.get(f"{server.url}/nope.html") as response:
            assert response.status == 404


async def test_oversized_polling_post_gets_413() -> None:
    async with running_server("--max-relay-bytes", "1000") as server:
        base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as response:
                text = await response.text()
                assert '"maxPayload":' in text
            sid = text.split('"sid":"')[1].split('"')[0]
            async with http.post(f"{base}&sid={sid}", data="4" + "x" * 10_000) as response:
                assert response.status == 413
            async with http.post(f"{base}&sid={sid}", data="40") as response:
                assert response.status == 400  # the session is gone
