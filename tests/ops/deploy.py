"""Real nginx and coturn on loopback, and a throwaway certificate, for the deployment tests.

The nginx config is the block docs/deployment.md shows between its
``tested-nginx-config`` markers, with only ports and certificate paths
swapped; each swap must find its line, so the doc and the test cannot drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.bounded import terminate
from tests.helpers.ports import free_port
from tests.helpers.server import ROOT

DOC = ROOT / "docs" / "deployment.md"
BEGIN, END = "<!-- tested-nginx-config:begin -->", "<!-- tested-nginx-config:end -->"
START_TIMEOUT = 15.0


def doc_nginx_block() -> str:
    text = DOC.read_text()
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert block.startswith("```nginx\n") and block.endswith("```"), "the tested block must be one nginx code block"
    return block[len("```nginx\n"):-3]


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"docs/deployment.md's nginx block no longer has exactly one {old!r}"
    return text.replace(old, new)


@dataclass
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made now with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return Certificate(cert, key)


def nginx_config(prefix: Path, port: int, nodes: list[int], cert: Certificate, *, websocket: bool = True) -> str:
    """The doc's block inside a minimal main config; ``websocket=False`` drops the
    upgrade headers, as a proxy that refuses websocket upgrades does."""
    block = doc_nginx_block()
    block = swap(block, "server 127.0.0.1:8081 ", f"server 127.0.0.1:{nodes[0]} ")
    block = swap(block, "server 127.0.0.1:8082 ", f"server 127.0.0.1:{nodes[1]} ")
    block = swap(block, "listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    block = swap(block, "/etc/letsencrypt/live/signal.example/fullchain.pem", str(cert.cert))
    block = swap(block, "/etc/letsencrypt/live/signal.example/privkey.pem", str(cert.key))
    if not websocket:
        block = swap(block, "proxy_set_header Upgrade $http_upgrade;", "")
        block = swap(block, "proxy_set_header Connection $connection_upgrade;", 'proxy_set_header Connection "";')
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\n"
        f"events {{ worker_connections 512; }}\n"
        f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n{block}\n}}\n"
    )


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


@dataclass
class Nginx:
    url: str
    prefix: Path

    def log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")


async def wait_listening(host: str, port: int, timeout: float = START_TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listens on {host}:{port} after {timeout:g} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def running_nginx(
    prefix: Path, nodes: list[int], cert: Certificate, *, websocket: bool = True
) -> AsyncIterator[Nginx]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, nodes, cert, websocket=websocket))
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        try:
            await wait_listening("127.0.0.1", port)
        except AssertionError:
            err = b""
            if process.returncode is not None and process.stderr is not None:
                err = await process.stderr.read()
            raise AssertionError(f"nginx did not start: {err.decode(errors='replace')}") from None
        yield Nginx(f"https://127.0.0.1:{port}", prefix)
    finally:
        await terminate(process)  # SIGTERM: nginx's fast shutdown
