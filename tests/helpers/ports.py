"""Loopback ports for servers that must come back on the same port.

A port found with ``bind(0)`` comes from the kernel's ephemeral range: between
the probe and the server's own bind (or its restart), any other test's port-0
bind or outgoing connection, in this process or another xdist worker, may get
it. These ports come from below that range, where only explicit binds land.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000


def _ephemeral_start() -> int:
    try:
        return int(_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port that is free now and outside the ephemeral range."""
    top = max(_ephemeral_start(), LOWEST + 1000)
    for _ in range(200):
        port = random.randrange(LOWEST, top)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port between {LOWEST} and {top}")
