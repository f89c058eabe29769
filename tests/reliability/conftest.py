"""Fixtures of the fault tests: ICE on loopback only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import loopback_ice


@pytest.fixture(autouse=True)
def _loopback_ice() -> Iterator[None]:
    """aioice gathers host candidates on 127.0.0.1 only (never on eth0)."""
    with loopback_ice():
        yield
