"""The data path's guarded fixes to aiortc and aioice, installed together.

Each fix is its own module with its reasons and guard (docs/benchmarks.md,
"Data channel" for the measurements). ``install()`` is called when
``peer.webrtc_channel`` is imported; set ``RTC_PEER_FAST_PATH=0`` in the
environment to leave aiortc and aioice untouched (to compare, or to rule the
fixes out when chasing a bug).
"""

from __future__ import annotations

import os

from . import dtls_quiet_flush, sctp_delayed_sack, sctp_no_rescan, sctp_reassembly, udp_buffer

FIXES = (dtls_quiet_flush, sctp_delayed_sack, sctp_no_rescan, sctp_reassembly, udp_buffer)


def enabled() -> bool:
    return os.environ.get("RTC_PEER_FAST_PATH", "1") != "0"


def install() -> dict[str, bool]:
    """Install every fix that applies; returns which did (empty when disabled)."""
    if not enabled():
        return {}
    return {fix.__name__.rsplit(".", 1)[1]: fix.install() for fix in FIXES}
