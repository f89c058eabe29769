"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Every test that uses the ``browser`` fixture is marked ``browser`` and
skipped, with the reason, when the chromium binary is missing. Screenshots go to ``test-artifacts/`` (ignored
by git).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.helpers.bounded import within
from tests.helpers.server import RunningServer, running_server

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Pages without camera permission hide host addresses behind mDNS names,
    # which nothing resolves on a machine without multicast: show them.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the ``browser`` fixture are marked ``browser``."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_chromium() -> AsyncIterator[Any]:
    """One headless Chromium per worker process: a launch costs about a second
    of CPU (Playwright's driver and the browser), and there are ~50 browser tests.
    Each test gets fresh contexts; what it leaves open is closed after it."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS + MEDIA_ARGS, headless=True, timeout=60_000
        )
        try:
            yield chromium
        finally:
            await within(chromium.close(), "closing headless Chromium", 30)


@pytest_asyncio.fixture(loop_scope="session")
async def browser(shared_chromium: Any) -> AsyncIterator[Any]:
    if not shared_chromium.is_connected():
        pytest.fail("this worker's Chromium is gone (crashed in an earlier test?)")
    try:
        yield shared_chromium
    finally:
        for context in list(shared_chromium.contexts):
            await within(context.close(), "closing a browser context a test left open", 30)


@pytest_asyncio.fixture(loop_scope="session")
async def server() -> AsyncIterator[RunningServer]:
    """The root ``server`` fixture, in the event loop these tests share with Chromium."""
    async with running_server() as running:
        yield running


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
