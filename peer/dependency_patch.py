"""Guarded fixes to pinned dependency internals: applied only to the version they were made for.

A fix that reaches into aiortc or pyOpenSSL internals checks, before it
patches anything, that the package version is the one it was written and
tested against and that the attributes it replaces exist. Otherwise it
leaves the dependency alone and says so once in the log, so an upgrade of
aiortc costs speed, never correctness.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("peer.fast_path")


def applicable(name: str, version: str, made_for: str, owners: Iterable[tuple[Any, str]]) -> bool:
    """Whether fix ``name`` may patch: ``version == made_for`` and every ``(owner, attr)`` exists.

    Logs one warning (per call, and callers call once) when it may not.
    """
    if version != made_for:
        logger.warning("%s not applied: made for %s, found %s (the data path works, slower)",
                       name, made_for, version)
        return False
    missing = [attr for owner, attr in owners if not hasattr(owner, attr)]
    if missing:
        logger.warning("%s not applied: %s missing (the data path works, slower)",
                       name, ", ".join(missing))
        return False
    return True
