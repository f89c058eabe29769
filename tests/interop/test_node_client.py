"""Interop with the official socket.io-client 4.x under Node: every transport, binary both ways."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import RunningServer

pytestmark = pytest.mark.node
COUNT = 100


@pytest.mark.parametrize("mode", ["websocket", "polling", "upgrade"])
async def test_official_client_talks_to_python_client(
    server: RunningServer, node_client_dir: Path, mode: str
) -> None:
    py = await RecordingClient().connect(server.url)
    room = f"interop-{mode}"
    node = None
    try:
        own = await py.join(room)
        node = await asyncio.create_subprocess_exec(
            "node", str(node_client_dir / "node_peer.mjs"), server.url, room, mode, str(COUNT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_PATH": str(node_client_dir / "node_modules")},
        )
        relays = await py.wait_for("relay", COUNT + 2, timeout=30)
        node_id = relays[0]["from"]
        assert [r["data"] for r in relays[:COUNT]] == list(range(COUNT))
        nested = relays[COUNT]["data"]
        assert nested == {"label": "nested", "bytes": bytes(range(256)), "deep": [{"buf": "héllo".encode()}]}
        assert relays[COUNT + 1] == {"room": room, "from": node_id, "event": "sent", "data": COUNT + 1}
        blob = os.urandom(100_000)
        reply = await py.request("relay", {"room": room, "to": node_id, "event": "bin", "data": {"blob": blob}})
        assert reply == {"ok": True, "delivered": 1}
        echo = (await py.wait_for("relay", COUNT + 3, timeout=30))[-1]
        assert echo["event"] == "echo"
        assert echo["data"] == {"sha256": hashlib.sha256(blob).hexdigest(), "blob": blob}
        stdout, stderr = await asyncio.wait_for(node.communicate(), 30)
        assert node.returncode == 0, stderr.decode() + stdout.decode()
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        assert report["errors"] == [] and report["acks"] == COUNT + 1
        assert report["receivedBinaryType"] == "Buffer"
        assert report["peerId"] == node_id != own["peerId"]
        expected = {"websocket": ("websocket", False), "polling": ("polling", False), "upgrade": ("websocket", True)}
        assert (report["transport"], report["upgraded"]) == expected[mode]
    finally:
        if node is not None and node.returncode is None:
            node.kill()
            await node.wait()
        await py.disconnect()


async def test_raw_polling_batch_of_more_than_16_packets(server: RunningServer) -> None:
    """A polling POST carrying 40 packets (as the official client batches) is accepted whole."""
    receiver = await RecordingClient().connect(server.url)
    try:
        ack = await receiver.join("batch")
        base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as response:
                opening = await response.text()
            sid = json.loads(opening[1:])["sid"]
            url = f"{base}&sid={sid}"
            async with http.post(url, data="40") as response:
                assert response.status == 200
            async with http.get(url) as response:
                assert (await response.text()).startswith("40")
            join = '42["join",{"room":"batch"}]'
            relays = [
                f'42["relay",{{"room":"batch","to":"{ack["peerId"]}","event":"n","data":{n}}}]'
                for n in range(40)
            ]
            async with http.post(url, data="\x1e".join([join, *relays])) as response:
                assert response.status == 200
            got = await receiver.wait_for("relay", 40)
            assert [r["data"] for r in got] == list(range(40))
            async with http.post(url, data="1") as response:
                assert response.status == 200
    finally:
        await receiver.disconnect()
