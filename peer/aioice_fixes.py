"""A correction to aioice 0.13.0, applied once when ``peer`` is imported.

aioice hands every datagram that is not STUN (DTLS, SCTP) to aiortc,
whatever address it came from. One forged DTLS ClientHello sent to a host
candidate's port while ICE checks run is taken as the start of the DTLS
handshake and the call fails (reliability battery B46). We pass such a
datagram on only when it comes from the remote address of a pair in that
connection's check list: a candidate the remote peer signaled, or one that
sent us an authenticated check. aioice is pinned exactly (pyproject.toml)
because this reaches into its internals.

Tests: tests/reliability/test_hostile_remote_peer_aiortc.py (B46, with and without it).
"""

from __future__ import annotations

from typing import Any

import aioice.ice

_STUN_COOKIE = b"\x21\x12\xa4\x42"
_installed = False


def is_stun(data: bytes) -> bool:
    """Whether a datagram is STUN (RFC 5389: first two bits 0, the magic cookie)."""
    return len(data) >= 20 and data[0] < 2 and data[4:8] == _STUN_COOKIE


def _known_sources(protocol: Any) -> set[tuple[Any, Any]]:
    return {
        pair.remote_addr
        for pair in getattr(protocol.receiver, "_check_list", ())
        if pair.protocol is protocol
    }


def install() -> None:
    """Patch ``aioice.ice.StunProtocol`` (idempotent)."""
    global _installed
    if _installed:
        return
    original = aioice.ice.StunProtocol.datagram_received

    def datagram_received(protocol: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        if not is_stun(data):
            source = (addr[0], addr[1])
            known: set[tuple[Any, Any]] | None = getattr(protocol, "_rtc_known_sources", None)
            if known is None or source not in known:
                # Recomputed only on a miss: the hot path is one set lookup.
                known = _known_sources(protocol)
                protocol._rtc_known_sources = known
                if source not in known:
                    return
        original(protocol, data, addr)

    aioice.ice.StunProtocol.datagram_received = datagram_received  # type: ignore[assignment]
    _installed = True
