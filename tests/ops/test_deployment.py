"""The deployment docs/deployment.md shows, run for real: Debian's nginx with TLS (a
throwaway certificate) in front of two Redis-backed nodes; the official
socket.io-client connects over polling, websocket and the upgrade through it, and
two peers on different nodes talk."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cluster.conftest import NEEDS_REDIS
from tests.helpers.redis_server import RedisServer
from tests.helpers.server import RunningServer, running_server
from tests.ops.deploy import Certificate, nginx_available, running_nginx

pytestmark = [
    pytest.mark.redis, NEEDS_REDIS,
    pytest.mark.skipif(not nginx_available(), reason="nginx is not installed"),
]
HERE = Path(__file__).parent
SOURCES = [f"127.0.0.{n}" for n in range(1, 33)]


async def node_of(http: aiohttp.ClientSession, proxy: str, source: str, nodes: list[RunningServer],
                  tls: ssl.SSLContext) -> int:
    """Which node nginx sends a client at ``source`` to: open an Engine.IO session
    through the proxy, then ask each node directly whether it holds it."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as own, \
            own.get(f"{proxy}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200, await response.text()
        sid = json.loads((await response.text())[1:])["sid"]
    held = []
    for index, node in enumerate(nodes):
        # A POST (a pong) answers at once: a GET to the holder would long-poll until its ping.
        async with http.post(f"{node.url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                             data=b"3") as response:
            if response.status == 200:
                held.append(index)
    assert len(held) == 1, held
    return held[0]


def peer_script(node_dir: Path, into: Path) -> Path:
    """The peer script beside a link to the installed client (Node resolves
    imports from the script's own folder)."""
    into.mkdir()
    (into / "node_modules").symlink_to(node_dir / "node_modules")
    script = into / "peer.mjs"
    script.write_text((HERE / "node_deploy_peer.mjs").read_text())
    return script


async def run_peer(script: Path, url: str, room: str, mode: str, source: str, ca: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node", str(script), url, room, mode, source, str(ca),
        cwd=script.parent, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert process.returncode == 0 and lines, (out, err)
    return {**lines[-1], "joined": lines[0].get("joined")}


async def test_official_client_through_nginx_to_two_nodes(
    tmp_path: Path, certificate: Certificate, redis_server: RedisServer, node_client_dir: Path
) -> None:
    flags = ("--redis-url", redis_server.url, "--rate-limit", "0")
    async with running_server(*flags) as one, running_server(*flags) as two:  # noqa: SIM117 (needs the ports)
        async with running_nginx(tmp_path / "nginx", [one.port, two.port], certificate) as proxy, \
                aiohttp.ClientSession() as http:
            tls = ssl.create_default_context(cafile=str(certificate.cert))
            async with http.get(f"{proxy.url}/healthz", ssl=tls) as response:
                assert response.status == 200 and (await response.json()) == {"status": "ok"}
            # the admin API is kept to the inside (the doc's location /admin/)
            connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), ssl=tls)
            async with aiohttp.ClientSession(connector=connector) as outside, \
                    outside.get(f"{proxy.url}/admin/rooms") as response:
                assert response.status == 403
            # sticky by client address: find a source address for each node
            placed: dict[int, str] = {}
            for source in SOURCES:
                placed.setdefault(await node_of(http, proxy.url, source, [one, two], tls), source)
                if len(placed) == 2:
                    break
            assert len(placed) == 2, "nginx sent 32 client addresses to one node"
            script = peer_script(node_client_dir, tmp_path / "peer")
            for mode in ("polling", "websocket", "upgrade"):
                room = f"deploy-{mode}"
                a, b = await asyncio.gather(
                    run_peer(script, proxy.url, room, mode, placed[0], certificate.cert),
                    run_peer(script, proxy.url, room, mode, placed[1], certificate.cert),
                )
                assert a["got"] == {"mode": mode, "from": b["joined"]}, (a, b)
                assert b["got"] == {"mode": mode, "from": a["joined"]}, (a, b)
                expected = "polling" if mode == "polling" else "websocket"
                assert a["transport"] == b["transport"] == expected
                if mode == "upgrade":
                    assert a["upgraded"] and b["upgraded"]
                # each peer really was on its own node
                await one.log_line(f"join {a['joined']}")
                await two.log_line(f"join {b['joined']}")
