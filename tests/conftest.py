from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from tests.helpers.server import RunningServer, running_server

# Under pytest-xdist the longest tests start first, so that none of them is
# left to run alone at the end: tests marked ``slow``, then the directories by
# their tests' mean duration (measured: examples ~14 s a test, browsers and
# clusters ~11, media ~9, ... the protocol and backend unit tests under 1 s).
# xdist's default scheduler deals the first quarter round-robin, so the long
# ones spread over the workers (``worksteal`` would give one worker all of them).
LONG_FIRST = (
    "tests/examples/", "tests/web/", "tests/cluster/", "tests/media/", "tests/reliability/",
    "tests/docs/", "tests/ops/", "tests/security/", "tests/peer/",
)


def _start_rank(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is not None:
        return 0
    path = item.nodeid
    for rank, prefix in enumerate(LONG_FIRST, start=1):
        if path.startswith(prefix):
            return rank
    return len(LONG_FIRST) + 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # xdist's workers collect (and must all agree on the order); its controller
    # only hands out indices. A worker's config has ``workerinput``.
    if hasattr(config, "workerinput"):
        items.sort(key=_start_rank)  # stable: the order within a rank stays
    for item in items:
        if _in_browser_loop(item):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


# Tests near the browser run in one event loop per worker, the loop of the
# worker's one Chromium (tests/web/conftest.py: ``shared_chromium``), with their
# async fixtures (``server``, ``browser``, ``coturn``) made for that loop.
BROWSER_LOOP = ("tests/web/", "tests/media/", "tests/ops/test_check_page.py")


def _in_browser_loop(item: pytest.Item) -> bool:
    function = getattr(item, "obj", None)
    return item.nodeid.startswith(BROWSER_LOOP) and inspect.iscoroutinefunction(function)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with running_server() as running:
        yield running
