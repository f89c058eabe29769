"""examples/browser_video: a Python peer's synthetic video shows in the call demo."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.server import ROOT, RunningServer
from tests.web.pages import open_demo, screenshot

pytest.importorskip("aiortc", reason="the example needs aiortc (pip install .[peer])")

EXAMPLE = ROOT / "examples" / "browser_video" / "video_peer.py"
PYTHON_TILE = "figure.tile[data-peer='{id}'] video"


async def test_python_synthetic_video_shows_in_the_call(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    room = "python-video"
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--server", server.url, "--room", room,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's peer package
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith(f"joined {room} as "), line
        python_id = line.split(" as ", 1)[1].split(":", 1)[0]

        errors: list[str] = []
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        # Two pages: the Python peer is likely the offerer to one, the answerer to the other.
        pages = [
            await open_demo(context, f"{server.url}/call.html?room={room}&name={name}", errors=errors)
            for name in ("Ada", "Bob")
        ]
        tile = PYTHON_TILE.format(id=python_id)
        for page in pages:
            await page.wait_for_function(
                f"""() => {{ const v = document.querySelector("{tile}");
                     return !!v && v.videoWidth === 320 && v.currentTime > 0.3; }}""",
                timeout=45_000,
            )
            before = await page.evaluate(f"""() => document.querySelector("{tile}").currentTime""")
            await page.wait_for_function(
                f"""() => document.querySelector("{tile}").currentTime > {before} + 0.2""",
                timeout=10_000,
            )
            await page.wait_for_selector(
                f"figure.tile[data-peer='{python_id}'][data-transport=webrtc][data-state=connected]",
                timeout=20_000,
            )
        await screenshot(pages[0], artifacts, "call-with-python")
        await context.close()
        assert errors == []
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        err = await process.stderr.read() if process.stderr else b""
        assert b"Traceback" not in err, err.decode(errors="replace")
