"""A page without RTCPeerConnection: chat, files and the call roster over the relay."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from tests.helpers.server import RunningServer
from tests.web.pages import open_demo, screenshot, wait_peers


async def send_chat(page: Any, text: str) -> None:
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


async def test_chat_without_webrtc(server: RunningServer, browser: Any, artifacts: Path) -> None:
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    url = f"{server.url}/chat.html?room=relay-chat"
    plain = await open_demo(context, url + "&name=Ada", errors=errors)
    bare = await open_demo(context, url + "&name=Bob", errors=errors, no_webrtc=True)
    assert await bare.evaluate("() => typeof window.RTCPeerConnection") == "undefined"
    assert await bare.evaluate("() => window.rtcPeer.webrtc") is False
    for page in (plain, bare):
        await wait_peers(page, 1, "relay")
    # The page with WebRTC knows the other has none: relay, and it stays so.
    assert await plain.evaluate("() => [...window.rtcPeer.peers.values()][0].webrtc") is False

    for i in range(5):
        await send_chat(plain, f"from Ada {i}")
        await send_chat(bare, f"from Bob {i}")
    await bare.wait_for_selector("text=from Ada 4")
    await plain.wait_for_selector("text=from Bob 4")
    # In order, once each.
    texts = await bare.eval_on_selector_all(".msg:not(.mine):not(.system) .bubble", "ns => ns.map(n => n.textContent)")
    assert texts == [f"from Ada {i}" for i in range(5)]
    assert await bare.inner_text("#roster [data-transport]") == "relay"
    assert await bare.is_visible("#relay-note")
    await screenshot(bare, artifacts, "chat-relay")
    await context.close()
    assert errors == []


async def test_files_without_webrtc(server: RunningServer, browser: Any, artifacts: Path) -> None:
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    url = f"{server.url}/files.html?room=relay-files"
    plain = await open_demo(context, url + "&name=Ada", errors=errors)
    bare = await open_demo(context, url + "&name=Bob", errors=errors, no_webrtc=True)
    for page in (plain, bare):
        await wait_peers(page, 1, "relay")
    rng = random.Random(7)
    for sender, receiver, name, size in ((plain, bare, "a.bin", 3_000_000), (bare, plain, "b.bin", 1_234_567)):
        data = rng.randbytes(size)
        digest = hashlib.sha256(data).hexdigest()
        await sender.set_input_files(
            "#file-input", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
        )
        await receiver.wait_for_selector(f".transfer.done [data-sha256='{digest}']", timeout=60_000)
        await sender.wait_for_selector(f".transfer.done [data-sha256='{digest}']", timeout=20_000)
    await screenshot(bare, artifacts, "files-relay")
    await context.close()
    assert errors == []


async def test_call_without_webrtc_keeps_roster_and_chat(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    url = f"{server.url}/call.html?room=relay-call"
    plain = await open_demo(context, url + "&name=Ada", errors=errors)
    bare = await open_demo(context, url + "&name=Bob", errors=errors, no_webrtc=True)
    for page in (plain, bare):
        await wait_peers(page, 1, "relay")
    assert await bare.is_visible("#media-note")
    assert await plain.get_attribute(".tile:not(.self)", "data-state") == "none"
    await bare.wait_for_selector("#roster >> text=Ada")
    await send_chat(bare, "no camera here")
    await plain.wait_for_selector("text=no camera here")
    await screenshot(bare, artifacts, "call-relay")
    await context.close()
    assert errors == []
