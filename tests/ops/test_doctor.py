"""``python -m signaling doctor``: against a healthy server with coturn, behind a proxy
that refuses websocket upgrades, and with nothing listening."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from signaling.doctor import parse_ice_url
from tests.helpers.coturn import running_coturn
from tests.helpers.ports import free_port
from tests.helpers.server import ROOT, running_server
from tests.ops.deploy import Certificate, nginx_available, running_nginx


async def doctor(*argv: str) -> tuple[int, dict[str, str]]:
    """Run the doctor; its exit status and each check's line, by check name."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "doctor", *argv, "--timeout", "5", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    lines = out.decode().splitlines()
    checks = {line.split()[1]: line for line in lines[:-1] if line.split()[0] in ("ok", "FAIL", "skip")}
    assert process.returncode is not None, err
    return process.returncode, checks


def status(checks: dict[str, str]) -> dict[str, str]:
    return {name: line.split()[0] for name, line in checks.items()}


async def test_healthy_server_with_stun_and_turn(tmp_path: Path) -> None:
    async with running_coturn(tmp_path) as coturn:
        flags = coturn.server_flags("--stun", f"stun:127.0.0.1:{coturn.port}")
        async with running_server(*flags) as server:
            code, checks = await doctor(server.url, "--turn")
    assert status(checks) == {name: "ok" for name in
                              ("http", "polling", "websocket", "upgrade", "join", "relay", "ice", "stun", "turn")}, checks
    assert code == 0
    assert "relayed address 127.0.0.1:" in checks["turn"]


async def test_a_wrong_turn_secret_fails_with_the_fix(tmp_path: Path) -> None:
    async with running_coturn(tmp_path) as coturn, running_server(
            "--turn-url", coturn.url, f"--turn-secret=not-{coturn.secret}") as server:
        code, checks = await doctor(server.url, "--turn")
    assert code == 1
    assert checks["turn"].startswith("FAIL") and "static-auth-secret" in checks["turn"]
    assert status(checks)["stun"] == "skip"


async def test_turn_is_skipped_without_the_flag() -> None:
    async with running_server() as server:
        code, checks = await doctor(server.url)
    assert code == 0
    assert status(checks)["turn"] == "skip" and status(checks)["stun"] == "skip"


async def test_nothing_listening() -> None:
    code, checks = await doctor(f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert checks["http"].startswith("FAIL") and "Fix:" in checks["http"]
    assert status(checks)["polling"] == "skip" and status(checks)["websocket"] == "skip"


@pytest.mark.skipif(not nginx_available(), reason="nginx is not installed")
async def test_a_proxy_that_refuses_websocket_upgrades(tmp_path: Path, certificate: Certificate) -> None:
    async with running_server() as server:
        nodes = [server.port, server.port]
        async with running_nginx(tmp_path / "nginx", nodes, certificate, websocket=False) as proxy:
            code, checks = await doctor(proxy.url, "--insecure")
            assert code == 1
            assert status(checks)["http"] == "ok" and status(checks)["polling"] == "ok"
            assert checks["websocket"].startswith("FAIL") and "proxy_set_header Upgrade" in checks["websocket"]
            assert checks["upgrade"].startswith("FAIL")
            assert status(checks)["relay"] == "ok"  # polling and the failed upgrade's polling still talk
            # the certificate is checked unless told otherwise
            code, checks = await doctor(proxy.url)
            assert code == 1 and "not trusted" in checks["http"]


def test_ice_urls_parse() -> None:
    assert parse_ice_url("stun:stun.example:19302") == ("stun", "stun.example", 19302, "udp")
    assert parse_ice_url("turn:t.example?transport=tcp") == ("turn", "t.example", 3478, "tcp")
    assert parse_ice_url("turns:t.example:443?transport=tcp") == ("turns", "t.example", 443, "tcp")
    assert parse_ice_url("turn:[::1]:3478") == ("turn", "::1", 3478, "udp")
