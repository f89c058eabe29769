"""F7: the polling → websocket upgrade fails; the session stays on polling.

A proxy in front of the server breaks every websocket upgrade, either by
answering the handshake ``400`` or by letting it through and then swallowing
what the server says on it (the client's ``2probe`` is never answered, it
never sends ``5``, and the server holds a half-done upgrade). The client that
goes through the proxy is polling-capable and allowed to upgrade; the peer it
talks to is websocket-only and connects directly: the two share a room.

Checked: the upgrade really was tried and failed; the session stays on
polling and keeps working; every numbered relay either way arrives exactly
once and in order (gap 0, duplicates 0), all acked.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import running_server

from .support import UpgradeRefusingProxy

HERE = Path(__file__).parent
INTEROP = HERE.parent / "interop"
COUNT = 100


async def send_numbered(client: RecordingClient, room: str, to: str | None, count: int) -> None:
    for n in range(count):
        payload = {"room": room, "event": "seq", "data": {"n": n}}
        if to is not None:
            payload["to"] = to
        ack = await client.request("relay", payload)
        assert ack == {"ok": True, "delivered": 1}, ack
        await asyncio.sleep(0.01)  # pacing, so the traffic spans the probe


def numbers(relays: list[dict[str, object]]) -> list[object]:
    return [r["data"]["n"] for r in relays if r.get("event") == "seq"]  # type: ignore[index]


async def test_python_client_stays_on_polling_when_the_upgrade_is_refused() -> None:
    async with running_server() as server, UpgradeRefusingProxy(server.port) as proxy:
        ws_only = await RecordingClient().connect(server.url, transports=["websocket"])
        upgrading = RecordingClient()
        await upgrading.sio.connect(proxy.url, transports=["polling", "websocket"], wait_timeout=10)
        try:
            assert proxy.refused >= 1, "the client never tried to upgrade"
            assert upgrading.sio.transport() == "polling"
            await ws_only.join("f7")
            joined = await upgrading.join("f7")
            me, other = joined["peerId"], joined["peers"][0]["peerId"]
            await asyncio.gather(send_numbered(upgrading, "f7", other, COUNT),
                                 send_numbered(ws_only, "f7", me, COUNT))
            at_ws = await ws_only.wait_for("relay", COUNT)
            at_polling = await upgrading.wait_for("relay", COUNT)
            assert numbers(at_ws) == list(range(COUNT))
            assert numbers(at_polling) == list(range(COUNT))
            assert upgrading.sio.transport() == "polling"
            assert proxy.passed > 2  # the polling requests went through the proxy
        finally:
            await upgrading.disconnect()
            await ws_only.disconnect()


@pytest.mark.node
@pytest.mark.parametrize("mode", ["refuse", "swallow"])
async def test_official_client_keeps_polling_through_a_failed_upgrade(mode: str) -> None:
    """The official client polls while it probes, so here the failure
    happens in the middle of the traffic, not before it."""
    if shutil.which("node") is None or not (INTEROP / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("node and tests/interop/node_modules are needed")
    async with running_server() as server, UpgradeRefusingProxy(server.port, mode) as proxy:
        ws_only = await RecordingClient().connect(server.url, transports=["websocket"])
        node = None
        try:
            await ws_only.join("f7-node")
            node = await asyncio.create_subprocess_exec(
                "node", str(HERE / "node_upgrade.mjs"), proxy.url, "f7-node", str(COUNT),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            joined = await ws_only.wait_for("peer-joined", 1, timeout=15)
            node_id = joined[0]["peerId"]
            await send_numbered(ws_only, "f7-node", node_id, COUNT)
            stdout, stderr = await asyncio.wait_for(node.communicate(), 45)
            assert node.returncode == 0, stderr.decode() + stdout.decode()
            result = json.loads(stdout.decode().strip().splitlines()[-1])
            assert proxy.refused >= 1, "the official client never tried to upgrade"
            assert result["upgraded"] is False and result["transport"] == "polling", result
            assert result["acked"] == COUNT and result["failed"] == []
            assert result["received"] == list(range(COUNT))
            at_ws = await ws_only.wait_for("relay", COUNT)
            assert numbers(at_ws) == list(range(COUNT))
        finally:
            if node is not None and node.returncode is None:
                node.kill()
                await node.wait()
            await ws_only.disconnect()
