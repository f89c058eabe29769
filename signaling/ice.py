"""The ``iceServers`` list handed to a peer in its ``join`` ack.

Entries have the browser's ``RTCIceServer`` shape. STUN URLs go in one entry
without credentials. TURN URLs go in one entry with time-limited credentials
by the TURN REST API convention that coturn checks with ``use-auth-secret``::

    username   = "<expiry unix seconds>:<peerId>"
    credential = base64(HMAC-SHA1(turn_secret, username))

The peer id in the username is always the server's own id for the peer, so a
client cannot get credentials that name someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

IceServer = dict[str, object]
"""One ``RTCIceServer``: ``urls`` and, for TURN, ``username`` and ``credential``."""


def _turn_credential(secret: str, username: str) -> str:
    """base64 of HMAC-SHA1(``secret``, ``username``), as coturn computes it."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers(
    *,
    stun: Sequence[str],
    turn_urls: Sequence[str],
    turn_secret: str | None,
    turn_ttl: int,
    peer_id: str,
    now: float,
) -> list[IceServer]:
    """The ``iceServers`` for ``peer_id`` at time ``now``; ``[]`` with nothing configured.

    TURN credentials expire at ``int(now) + turn_ttl``. TURN URLs need a
    secret (``ValueError`` without one: settings should refuse that).
    """
    servers: list[IceServer] = []
    if stun:
        servers.append({"urls": list(stun)})
    if turn_urls:
        if not turn_secret:
            raise ValueError("TURN URLs need a TURN secret")
        if turn_ttl <= 0:
            raise ValueError("turn_ttl must be positive")
        username = f"{int(now) + turn_ttl}:{peer_id}"
        servers.append(
            {
                "urls": list(turn_urls),
                "username": username,
                "credential": _turn_credential(turn_secret, username),
            }
        )
    return servers
