"""The pages themselves: home links, no horizontal overflow on a phone, labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.server import RunningServer
from tests.web.pages import screenshot


async def test_home_links_every_demo_with_the_room(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/")
    await page.wait_for_selector("#health.ok")
    await page.fill("#room", "team-sync")
    hrefs = await page.eval_on_selector_all(".demos a", "as => as.map(a => a.getAttribute('href'))")
    assert hrefs == ["/call.html?room=team-sync", "/files.html?room=team-sync", "/chat.html?room=team-sync"]
    await screenshot(page, artifacts, "home")
    await page.click("#check-link")
    await page.wait_for_selector("#checks li")
    assert page.url == f"{server.url}/check.html"
    await page.go_back()
    await page.fill("#room", "team-sync")
    await page.click("text=Open the chat")
    await page.wait_for_selector("body[data-ready]")
    assert await page.inner_text("#room-name") == "team-sync"
    await context.close()
    assert errors == []


async def test_demo_pages_fit_a_phone_and_label_their_controls(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    errors: list[str] = []
    for name in ("index", "call", "files", "chat"):
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{server.url}/{name}.html?room=phone&name=Eve")
        if name != "index":
            await page.wait_for_selector("body[data-ready]")
        overflow = await page.evaluate(
            "() => document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}.html is {overflow}px wider than the screen"
        # Every form control has a name a screen reader can read.
        unlabeled = await page.evaluate(
            """() => [...document.querySelectorAll('input, select, button, textarea')]
                 .filter(n => !(n.labels?.length || n.getAttribute('aria-label') || n.textContent.trim()))
                 .map(n => n.outerHTML)"""
        )
        assert unlabeled == []
        assert await page.evaluate("() => document.documentElement.lang") == "en"
        await screenshot(page, artifacts, f"phone-{name}")
        await page.close()
    await context.close()
    assert errors == []
