"""Which way a data channel's packets go: the selected ICE pair and the round-trip time.

aiortc reports no candidate-pair statistics, so this reads what its parts
hold: aioice's nominated pair (behind the SCTP association's DTLS and ICE
transports) and the SCTP association's smoothed round-trip time (RFC 4960,
measured on its own data chunks' acks). Reaching into those attributes is
why aiortc and aioice are pinned exactly (pyproject.toml); anything missing
reads as unknown (None), never as an error.

``candidate``: the local candidate type of the pair, except ``"relay"``
when either end is a TURN relay (then the server relays the packets,
whichever side allocated it): what the browser reports from ``getStats()``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Candidate = Literal["host", "srflx", "prflx", "relay"]
CANDIDATE_TYPES: tuple[Candidate, ...] = ("host", "srflx", "prflx", "relay")


class PathInfo(TypedDict):
    """What ``Peer.path`` returns."""

    transport: Literal["webrtc", "relay"]
    candidate: Candidate | None
    rtt_ms: float | None


def pair_candidate(local_type: str | None, remote_type: str | None) -> Candidate | None:
    """The ``candidate`` field from the two ends' candidate types (pure)."""
    if "relay" in (local_type, remote_type):
        return "relay"
    for known in CANDIDATE_TYPES:
        if local_type == known:
            return known
    return None


def webrtc_path(pc: Any) -> tuple[Candidate | None, float | None]:
    """(candidate, rtt_ms) of an RTCPeerConnection's data path; None where unknown.

    A native connection (:mod:`peer.native`) reports its selected pair's
    candidate types; libdatachannel's C API gives no round-trip time.
    """
    selected_pair = getattr(pc, "selected_pair", None)
    if callable(selected_pair):
        local_type, remote_type = selected_pair()
        return pair_candidate(local_type, remote_type), None
    sctp = getattr(pc, "sctp", None)
    srtt = getattr(sctp, "_srtt", None)
    rtt_ms = round(srtt * 1000, 3) if isinstance(srtt, (int, float)) else None
    dtls = getattr(sctp, "transport", None)
    ice = getattr(dtls, "transport", None)
    connection = getattr(ice, "_connection", None)
    nominated = getattr(connection, "_nominated", None)
    if not isinstance(nominated, dict) or not nominated:
        return None, rtt_ms
    pair = nominated[min(nominated)]
    local = getattr(getattr(pair, "local_candidate", None), "type", None)
    remote = getattr(getattr(pair, "remote_candidate", None), "type", None)
    return pair_candidate(local, remote), rtt_ms
