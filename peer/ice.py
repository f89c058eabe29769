"""Which ICE servers the next RTCPeerConnection gets.

TURN credentials are minted with an expiry (``username = "<expiry>:<peerId>"``,
see ``signaling/ice.py``). The join's ack carries a first set; a connection
built later (a rebuild after a network change, a new track, a new peer in
an old room) would present credentials that may have run out, and the TURN
server would refuse it. So the first connection uses the join's servers
unless they expire within ``REFRESH_MARGIN``, and every later one asks the
server for fresh ones with the ``ice-servers`` request. When that request
fails (the signaling connection is down), the last servers known are used.
Servers given to the Peer by the application are used as they are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCConfiguration

from .channel import PathClosed
from .errors import SignalingError
from .negotiation import rtc_configuration

logger = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0
"""Seconds before their expiry at which the join's credentials count as stale."""

Fetch = Callable[[], Awaitable[list[dict[str, Any]]]]


def credentials_expiry(servers: list[dict[str, Any]]) -> float | None:
    """The earliest expiry (unix seconds) among TURN usernames, None without any."""
    expiries = []
    for entry in servers:
        username = entry.get("username") if isinstance(entry, dict) else None
        head = username.split(":", 1)[0] if isinstance(username, str) else ""
        if head.isdigit():
            expiries.append(float(head))
    return min(expiries) if expiries else None


def expires_soon(servers: list[dict[str, Any]], now: float, margin: float = REFRESH_MARGIN) -> bool:
    expiry = credentials_expiry(servers)
    return expiry is not None and expiry - now < margin


class IceServers:
    """The servers for the next connection: the join's first, fetched ones after."""

    def __init__(
        self,
        fixed: list[dict[str, Any]] | None,
        fetch: Fetch | None = None,
        transport_policy: str = "all",
    ) -> None:
        self._fixed = fixed
        self._policy = transport_policy
        self._fetch = fetch
        self._servers: list[dict[str, Any]] = []
        self._used = False
        self.fetched = 0
        """How many times fresh servers were fetched (for tests and logs)."""

    def joined(self, servers: list[dict[str, Any]]) -> None:
        """The servers of a new identity's join ack: good for one connection."""
        self._servers = servers
        self._used = False

    async def configuration(self) -> RTCConfiguration:
        if self._fixed is not None:
            return rtc_configuration(self._fixed, self._policy)
        if self._fetch is not None and (self._used or expires_soon(self._servers, time.time())):
            try:
                self._servers = await self._fetch()
                self.fetched += 1
            except (PathClosed, SignalingError) as exc:
                logger.info("no fresh ICE servers (%s): using the last known", exc)
        self._used = True
        return rtc_configuration(self._servers, self._policy)
