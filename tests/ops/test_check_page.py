"""check.html, the browser's side of the doctor, in real headless Chromium: against a
healthy server with coturn, behind a proxy that refuses websocket upgrades, and with
nothing listening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.coturn import running_coturn
from tests.helpers.ports import free_port
from tests.helpers.server import running_server
from tests.ops.deploy import Certificate, nginx_available, running_nginx
from tests.web.conftest import CHROMIUM

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")]
WAIT_MS = 40000


async def checks(browser: Any, url: str, *, camera: bool = False) -> dict[str, str]:
    """Open the page, wait until every check has an answer; status and text by check."""
    context = await browser.new_context(ignore_https_errors=True)
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector("body[data-done='true']", timeout=WAIT_MS)
        if camera:
            await page.click("#camera")
            await page.wait_for_selector("li[data-check='camera']:not([data-status='skip'])"
                                         ":not([data-status='running'])", timeout=WAIT_MS)
        rows = await page.eval_on_selector_all(
            "li[data-check]", "els => els.map(e => [e.dataset.check, e.dataset.status, e.textContent])")
    finally:
        await context.close()
    return {name: f"{status} {text}" for name, status, text in rows}


async def test_healthy_server_with_coturn(browser: Any, tmp_path: Path) -> None:
    async with running_coturn(tmp_path) as coturn, running_server(
            *coturn.server_flags("--stun", f"stun:127.0.0.1:{coturn.port}")) as server:
        got = await checks(browser, f"{server.url}/check.html", camera=True)
    for name in ("websocket", "polling", "join", "stun", "turn", "camera"):
        assert got[name].startswith("ok"), got
    assert "relay candidate" in got["turn"]


async def test_wrong_turn_secret_fails(browser: Any, tmp_path: Path) -> None:
    async with running_coturn(tmp_path) as coturn, running_server(
            "--turn-url", coturn.url, "--turn-secret", "wrong") as server:
        got = await checks(browser, f"{server.url}/check.html")
    assert got["turn"].startswith("FAIL") and "static-auth-secret" in got["turn"]
    assert got["stun"].startswith("skip") and got["camera"].startswith("skip")


@pytest.mark.skipif(not nginx_available(), reason="nginx is not installed")
async def test_behind_a_proxy_that_refuses_websocket_upgrades(
    browser: Any, tmp_path: Path, certificate: Certificate
) -> None:
    async with running_server() as server, running_nginx(
            tmp_path / "nginx", [server.port, server.port], certificate, websocket=False) as proxy:
        got = await checks(browser, f"{proxy.url}/check.html")
    assert got["websocket"].startswith("FAIL") and "Upgrade" in got["websocket"]
    assert got["polling"].startswith("ok") and got["join"].startswith("ok")


async def test_nothing_listening(browser: Any) -> None:
    async with running_server() as server:
        got = await checks(browser, f"{server.url}/check.html?server=http://127.0.0.1:{free_port()}")
    assert got["websocket"].startswith("FAIL") and got["polling"].startswith("FAIL")
    assert got["join"].startswith("skip")
