"""Helpers for driving the demo pages: open one, wait on its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"

# A remote peer's transport, read from the page's own Peer.
TRANSPORT_IS = """([n, t]) => { const p = window.rtcPeer;
    return !!p && p.peers.size === n && [...p.peers.keys()].every(id => p.transport(id) === t); }"""


async def open_demo(context: Any, url: str, *, errors: list[str], no_webrtc: bool = False) -> Any:
    """Open a demo page and wait until its Peer has joined."""
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{url}: {exc}"))
    if no_webrtc:
        await page.add_init_script(NO_WEBRTC)
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]", timeout=20_000)
    return page


async def blank_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    """A fresh context on the server's index page, and the page errors it collects."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{url}/")
    return context, page, errors


async def wait_peers(page: Any, count: int, transport: str, timeout: float = 30_000) -> None:
    await page.wait_for_function(TRANSPORT_IS, arg=[count, transport], timeout=timeout)


async def screenshot(page: Any, artifacts: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
