"""Browser Peer and Python Peer in one room: the same wire, both ways."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.server import RunningServer

pytest.importorskip("aiortc", reason="the Python peer needs aiortc (pip install .[peer])")
Peer = pytest.importorskip("peer", reason="the Python Peer is not there").Peer

BROWSER_SIDE = """
async ([room, expectFiles]) => {
  const { Peer } = await import('/static/rtc-peer.js');
  // A peerId in the middle of the alphabet, so that a Python peer can be drawn on either side.
  let peer;
  for (let i = 0; i < 40; i++) {
    peer = new Peer(location.origin, room, { meta: { name: 'browser' } });
    await peer.connect();
    if (peer.id[0] >= 'G' && peer.id[0] <= 't') break;
    await peer.close();
  }
  window.got = []; window.files = []; window.events = [];
  peer.on('m', (from, data) => window.got.push(data instanceof Uint8Array ? { bytes: Array.from(data) } : data));
  peer.on('file', async (from, file) => {
    const buf = await file.arrayBuffer();
    window.files.push({ name: file.name, size: file.size, sha256: file.sha256, bytes: buf.byteLength });
  });
  for (const e of ['upgrade', 'downgrade', 'peer-joined']) peer.on(e, (id) => window.events.push([e, id]));
  window.rtcPeer = peer;
  return peer.id;
}
"""


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("webrtc", "engine", "python_offers"),
    [
        (True, "native", True), (True, "native", False),
        (True, "aiortc", True), (True, "aiortc", False),
        (False, "auto", None),
    ],
    ids=["native-offers", "native-answers", "aiortc-offers", "aiortc-answers", "relay"],
)
async def test_browser_and_python_peer_talk_both_ways(
    server: RunningServer, browser: Any, tmp_path: Path, webrtc: bool, engine: str,
    python_offers: bool | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``engine``: the Python Peer's RTC_PEER_ENGINE; the lower peerId offers."""
    monkeypatch.setenv("RTC_PEER_ENGINE", engine)
    room = f"interop-{'rtc' if webrtc else 'relay'}"
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/")
    browser_id = await page.evaluate(BROWSER_SIDE, [room, 1])

    got: list[Any] = []
    files: list[Any] = []
    for _ in range(40):  # peerIds are random: draw until the wanted side offers
        python = Peer(server.url, room, meta={"name": "python"}, webrtc=webrtc,
                      download_dir=tmp_path)
        await python.connect()
        if python_offers is None or (python.id < browser_id) == python_offers:
            break
        await python.close()
    assert python_offers is None or (python.id < browser_id) == python_offers, "no draw"
    python.on("m", lambda sender, data: got.append((sender, data)))
    python.on("file", lambda sender, received: files.append((sender, received)))
    try:
        assert browser_id in python.peers
        expected = "webrtc" if webrtc else "relay"
        await page.wait_for_function(
            "([id, t]) => window.rtcPeer.peers.has(id) && window.rtcPeer.transport(id) === t",
            arg=[python.id, expected],
            timeout=30_000,
        )
        await wait_for(lambda: python.transport(browser_id) == expected)
        if webrtc:
            assert python_offers is None or (python.id < browser_id) == python_offers
            negotiator = python._links[browser_id].negotiator
            assert negotiator is not None
            native = type(negotiator.peer_connection).__name__ == "NativePeerConnection"
            assert native == (engine == "native")
            assert python.path(browser_id)["candidate"] == "host"

        blob = bytes(range(256)) * 3
        await python.emit("m", {"n": 1, "text": "é ✓"}, to=browser_id)
        await python.emit("m", blob)
        await page.evaluate(
            """async (to) => {
              await window.rtcPeer.emit('m', { n: 2, list: [1, 2.5, null] }, { to });
              await window.rtcPeer.emit('m', new Uint8Array([0, 1, 2, 253, 254, 255]));
            }""",
            python.id,
        )
        await page.wait_for_function("() => window.got.length === 2")
        assert await page.evaluate("() => window.got") == [
            {"n": 1, "text": "é ✓"},
            {"bytes": list(blob)},
        ]
        await wait_for(lambda: len(got) == 2)
        assert got == [
            (browser_id, {"n": 2, "list": [1, 2.5, None]}),
            (browser_id, bytes([0, 1, 2, 253, 254, 255])),
        ]

        # A file each way.
        data = random.Random(3).randbytes(1_500_000)
        source = tmp_path / "from-python.bin"
        source.write_bytes(data)
        await python.send_file(browser_id, source)
        await page.wait_for_function("() => window.files.length === 1", timeout=30_000)
        assert await page.evaluate("() => window.files[0]") == {
            "name": "from-python.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        result = await page.evaluate(
            """async (to) => {
              const bytes = new Uint8Array(700001).map((_, i) => (i * 7) % 251);
              return await window.rtcPeer.sendFile(to, new File([bytes], 'from-browser.bin'));
            }""",
            python.id,
        )
        expected_bytes = bytes((i * 7) % 251 for i in range(700001))
        assert result["sha256"] == hashlib.sha256(expected_bytes).hexdigest()
        await wait_for(lambda: len(files) == 1)
        sender, received = files[0]
        assert sender == browser_id
        assert received.name == "from-browser.bin"
        assert received.sha256 == result["sha256"]
        assert Path(received.path).read_bytes() == expected_bytes
    finally:
        await python.close()
        await context.close()
    assert errors == []
