"""The numbers and names both clients share (mirrors ``web/static/lib/constants.js``).

Both files are checked against ``tests/fixtures/peer-constants.json`` by the
Python and the JS tests, so a change to one that misses the other fails both.
"""

from __future__ import annotations

DATA_CHANNEL_HIGH_WATER_BYTES = 1024 * 1024
"""Writers wait while a data channel holds more than this, unsent."""
DATA_CHANNEL_LOW_WATER_BYTES = 256 * 1024
"""... and go on once it drained below this (``bufferedamountlow``)."""
DATA_CHANNEL_MESSAGE_BYTES = 64 * 1024
"""Largest data-channel message sent: what every WebRTC stack accepts."""
RELAY_MESSAGE_BYTES = 256 * 1024
"""Largest relay ``data`` sent (well under the server's default 1 MiB)."""

LOSSY_CHANNEL_LABEL = "rtc-peer.lossy"
LOSSY_CHANNEL_ID = 1000
"""The lossy channel (unordered, no retransmits) is negotiated out of band on this stream id."""

RECONNECT_DELAY_FIRST = 0.25
"""Seconds before the first reconnect attempt (then doubling)."""
RECONNECT_DELAY_MAX = 5.0
"""Cap of the reconnect delay: below the server's default resume grace (15 s)."""
RECONNECT_JITTER = 0.5
"""Each delay is moved at random by up to this fraction, either way (then capped)."""

SIGNALING_REQUEST_TIMEOUT = 10.0
"""Seconds a request to the server may take before the path counts as lost."""
SIGNALING_CONNECT_TIMEOUT = 10.0
"""Seconds the connection to the server may take to open."""
PEER_REQUEST_TIMEOUT = 10.0
"""Default ``timeout`` of ``Peer.request``."""
MAX_ANSWERING_PER_PEER = 256
"""Requests from one peer whose handlers may run at once; past it, "handler-error" at once."""
WEBRTC_CONNECT_TIMEOUT = 10.0
"""Seconds a data channel attempt may take before the pair stays on the relay."""
WEBRTC_RETRY_DELAY_FIRST = 2.0
"""Pause before a failed pair is tried again: doubling from this, ..."""
WEBRTC_RETRY_DELAY_MAX = 60.0
"""... capped at this."""

RESERVED_EVENTS = frozenset({
    "peer-joined", "peer-left", "peer-updated", "upgrade", "downgrade",
    "file", "file-offer", "file-progress", "file-failed", "track", "signaling",
    "connection-state", "error",
})
"""Library event names: an application cannot emit them, a remote never raises them."""
