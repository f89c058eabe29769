"""HTTPS flags, --version, numbers in flag errors, CORS headers on /static, the Redis warning."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from signaling.tls import self_signed
from tests.helpers.server import ROOT, running_server

WAIT = 20.0


def _signaling(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=WAIT)


def test_version() -> None:
    done = _signaling("--version")
    assert done.returncode == 0 and done.stdout.startswith("signaling-server (rtc-signaling) ")


@pytest.mark.parametrize("args, message", [
    (["--max-relay-bytes", "-1"], "argument --max-relay-bytes: expected 1 byte to 512 MiB, got -1"),
    (["--resume-grace", "-1"], "argument --resume-grace: expected 0 to 86,400 seconds, got -1"),
    (["--ping-interval", "0"], "argument --ping-interval: expected 0.05 to 3,600 seconds, got 0"),
    (["--tls-cert", "README.md"], "argument --tls-cert: needs --tls-key too"),
    (["--tls-key", "README.md"], "argument --tls-key: needs --tls-cert too"),
    (["--tls-cert", "nope.pem", "--tls-key", "README.md"], "argument --tls-cert: no such file: 'nope.pem'"),
    (["--tls-cert", "README.md", "--tls-key", "README.md"],
     "argument --tls-cert: README.md and README.md are not a PEM certificate and its private key"),
    (["--self-signed", "--tls-cert", "README.md", "--tls-key", "README.md"],
     "argument --self-signed: not with --tls-cert/--tls-key"),
])
def test_bad_flags_say_what_in_one_line(args: list[str], message: str) -> None:
    done = _signaling(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def _https(cafile: str) -> ssl.SSLContext:
    """A client that trusts exactly this certificate (and checks the host name in it)."""
    return ssl.create_default_context(cafile=cafile)


async def test_tls_cert_and_key_serve_https() -> None:
    with self_signed("127.0.0.1") as pair:
        async with running_server("--tls-cert", pair.cert, "--tls-key", pair.key) as server:
            assert server.url.startswith("https://127.0.0.1:")
            async with aiohttp.ClientSession() as http, http.get(
                    f"{server.url}/healthz", ssl=_https(pair.cert)) as reply:
                assert reply.status == 200 and await reply.json() == {"status": "ok"}


async def test_self_signed_prints_the_served_certificates_fingerprint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", "--self-signed", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            lines = [(await process.stdout.readline()).decode() for _ in range(3)]
        assert lines[0].startswith("self-signed certificate for localhost, 127.0.0.1")
        assert lines[1].startswith("SHA-256 fingerprint ")
        printed = lines[1].split()[-1]
        port = int(lines[2].rsplit(":", 1)[1])
        assert lines[2] == f"listening on https://127.0.0.1:{port}\n"
        pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port))
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
        assert printed == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    finally:
        process.terminate()
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0


@pytest.mark.parametrize("allowed, origin, expected", [
    ("http://app.example:3000", "http://app.example:3000", "http://app.example:3000"),
    ("http://app.example:3000", "http://evil.example", None),
    ("*", "http://anything.example", "*"),
    (None, "http://app.example:3000", None),
])
async def test_static_cors_header(allowed: str | None, origin: str, expected: str | None) -> None:
    flags = ["--allowed-origins", allowed] if allowed else []
    async with running_server(*flags) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/static/rtc-peer.js", headers={"Origin": origin}) as reply:
            assert reply.status == 200
            assert reply.headers.get("Access-Control-Allow-Origin") == expected
        async with http.get(f"{server.url}/healthz", headers={"Origin": origin}) as reply:
            assert "Access-Control-Allow-Origin" not in reply.headers  # /static only


def _closed_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_redis_is_said_at_start() -> None:
    async with running_server("--redis-url", f"redis://127.0.0.1:{_closed_port()}") as server:
        line = await server.log_line("--redis-url: ")
        assert "WARNING" in line and "cannot reach Redis" in line and "/healthz 503" in line


def test_tls_module_never_leaves_the_key_behind() -> None:
    with self_signed("127.0.0.1") as pair:
        assert Path(pair.key).stat().st_mode & 0o777 == 0o600
    assert not Path(pair.key).exists() and not Path(pair.cert).exists()
