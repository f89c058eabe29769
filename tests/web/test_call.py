"""Two pages in the video call demo see each other over WebRTC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.server import RunningServer
from tests.web.pages import open_demo, screenshot, wait_peers

REMOTE_VIDEO_PLAYING = """() => {
  const v = document.querySelector('.tile:not(.self) video');
  return !!v && v.videoWidth > 0 && v.currentTime > 0 && !v.paused;
}"""
CURRENT_TIME = "() => document.querySelector('.tile:not(.self) video').currentTime"


async def test_two_pages_see_each_others_video(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    pages = [
        await open_demo(context, f"{server.url}/call.html?room=call-test&name={name}", errors=errors)
        for name in ("Ada", "Bob")
    ]
    for page in pages:
        await wait_peers(page, 1, "webrtc")
        await page.wait_for_function(REMOTE_VIDEO_PLAYING, timeout=30_000)
        tile = page.locator(".tile:not(.self)")
        assert await tile.get_attribute("data-transport") == "webrtc"
        await page.wait_for_function(
            "() => document.querySelector('.tile:not(.self)').dataset.state === 'connected'"
        )
        # Playing, not frozen: currentTime moves on.
        before = await page.evaluate(CURRENT_TIME)
        await page.wait_for_function(f"() => ({CURRENT_TIME})() > {before} + 0.2", timeout=10_000)
        width = await page.evaluate("() => document.querySelector('.tile:not(.self) video').videoWidth")
        assert width > 0

    # The mute toggle reaches the other side.
    await pages[0].click("#mic")
    assert await pages[0].get_attribute("#mic", "aria-pressed") == "true"
    await pages[1].wait_for_selector(".tile:not(.self) [data-role=muted]:not([hidden])")

    await screenshot(pages[0], artifacts, "call")

    # Leaving: the other page drops the tile.
    await pages[0].click("#leave")
    await pages[1].wait_for_function("() => !document.querySelector('.tile:not(.self)')")
    await context.close()
    assert errors == []
