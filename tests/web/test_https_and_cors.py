"""Chromium over HTTPS (a trusted throwaway certificate), the module imported from
another origin, and what the demo pages say about insecure pages, names and rooms."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers.server import RunningServer, running_server
from tests.web.conftest import ARGS, CHROMIUM, MEDIA_ARGS
from tests.web.pages import open_demo, wait_peers
from tests.web.test_call import REMOTE_VIDEO_PLAYING

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
]


def spki_hash(pem: str) -> str:
    """What --ignore-certificate-errors-spki-list takes: base64(SHA-256(SubjectPublicKeyInfo))."""
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def _chromium(*extra: str) -> Any:
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=str(CHROMIUM),
                                       args=[*ARGS, *MEDIA_ARGS, *extra], headless=True)
    return pw, browser


async def test_a_call_over_https_with_a_trusted_self_signed_certificate() -> None:
    async with running_server("--self-signed") as server:
        assert server.url.startswith("https://")
        host, port = server.url.removeprefix("https://").split(":")
        pem = await asyncio.to_thread(ssl.get_server_certificate, (host, int(port)))
        pw, browser = await _chromium(f"--ignore-certificate-errors-spki-list={spki_hash(pem)}")
        try:
            errors: list[str] = []
            context = await browser.new_context()
            pages = [await open_demo(context, f"{server.url}/call.html?room=tls", errors=errors)
                     for _ in range(2)]
            for page in pages:
                assert await page.evaluate("() => window.isSecureContext") is True
                await wait_peers(page, 1, "webrtc")
                await page.wait_for_function(REMOTE_VIDEO_PLAYING, timeout=30_000)
                assert await page.get_attribute("#media-note", "data-reason") is None
            names = [await p.locator("[data-peer=self] .name").first.text_content() for p in pages]
            assert names[0] != names[1]  # two tabs, two random names
            assert errors == []
        finally:
            await browser.close()
            await pw.stop()


async def test_plain_http_on_a_lan_name_says_the_camera_needs_https() -> None:
    # The server listens on loopback, so it answers a LAN name only when told to.
    async with running_server("--allowed-hosts", "lan.test") as server:
        await _insecure_context_note(server)


async def _insecure_context_note(server: RunningServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    pw, browser = await _chromium("--host-resolver-rules=MAP lan.test 127.0.0.1")
    try:
        page = await browser.new_page()
        await page.goto(f"http://lan.test:{port}/call.html?room=insecure")
        await page.wait_for_selector("#media-note[data-reason=insecure-context]", timeout=20_000)
        note = await page.text_content("#media-note")
        assert note is not None and "need HTTPS or localhost" in note and "--self-signed" in note
        assert await page.evaluate("() => window.isSecureContext") is False
    finally:
        await browser.close()
        await pw.stop()


async def test_an_invalid_room_is_an_error_not_a_random_room(server: RunningServer) -> None:
    pw, browser = await _chromium()
    try:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{server.url}/chat.html?room=my%20room")
        await page.wait_for_selector("body[data-error=room]", timeout=20_000)
        assert "my room" in (await page.text_content("[role=alert]") or "")
        assert await page.get_attribute("[role=alert] a", "href") == f"{server.url}/chat.html?room=my-room"
        assert "room=my+room" in page.url or "room=my%20room" in page.url  # not replaced
        assert await page.evaluate("() => window.rtcPeer === undefined")
        assert errors == []
    finally:
        await browser.close()
        await pw.stop()


IMPORTER = """<!doctype html><meta charset="utf-8"><title>app</title>
<script type="module">
  window.result = "pending";
  import("%(server)s/static/rtc-peer.js").then(async ({ Peer }) => {
    const peer = new Peer("%(server)s", "cors", { webrtc: false, reconnect: false });
    await peer.connect();
    window.result = "joined " + peer.id.length;
  }).catch((err) => { window.result = "failed: " + err; });
</script>"""


async def _app_site(html: dict[str, str]) -> AsyncIterator[str]:
    app = web.Application()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=html["text"], content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "not-allowed"])
async def test_the_module_imports_from_another_origin(allowed: bool) -> None:
    html: dict[str, str] = {}
    sites = _app_site(html)
    origin = await anext(sites)
    try:
        flags = ["--allowed-origins", origin] if allowed else []
        async with running_server(*flags) as server:
            html["text"] = IMPORTER % {"server": server.url}
            pw, browser = await _chromium()
            try:
                page = await browser.new_page()
                await page.goto(origin + "/")
                await page.wait_for_function("() => window.result !== 'pending'", timeout=20_000)
                result = await page.evaluate("() => window.result")
            finally:
                await browser.close()
                await pw.stop()
    finally:
        await sites.aclose()
    if allowed:
        assert result.startswith("joined "), result
    else:
        assert result.startswith("failed: TypeError"), result  # the import is blocked by CORS
