"""aioice 0.13.0: a 4 MiB UDP receive buffer for the ICE sockets instead of 256 KiB.

Upstream-ready description: aioice sets ``SO_RCVBUF`` on its host and TURN
sockets to ``aioice.turn.UDP_SOCKET_BUFFER_SIZE`` (256 KiB). An aiortc
sender on loopback bursts faster than an event loop busy with decryption
drains the socket, so the kernel drops datagrams when the buffer is full
(hundreds to tens of thousands per 100 MB), and each drop costs a
retransmission and a halved congestion window. A larger buffer absorbs the
bursts; the kernel caps it at ``net.core.rmem_max`` (raise that too for the
full effect), so asking for more is harmless. Nothing on the wire changes.

Guard: aioice 0.13.0 exactly; otherwise it does nothing and logs once.
"""

from __future__ import annotations

import aioice
import aioice.turn

from .dependency_patch import applicable

MADE_FOR = "0.13.0"
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
_installed = False


def install() -> bool:
    """Raise aioice's socket buffer size once; False if not applicable."""
    global _installed
    if _installed:
        return True
    if not applicable("udp_buffer", aioice.__version__, MADE_FOR,
                      [(aioice.turn, "UDP_SOCKET_BUFFER_SIZE")]):
        return False
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = max(aioice.turn.UDP_SOCKET_BUFFER_SIZE,
                                             RECEIVE_BUFFER_BYTES)
    _installed = True
    return True
