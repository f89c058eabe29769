"""peer.udp_buffer: aioice's sockets get the larger receive buffer (up to the kernel's cap)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aioice.turn
import pytest

from peer.udp_buffer import RECEIVE_BUFFER_BYTES
from tests.peer.fast_path_support import checked_transfer, loopback_pair


async def test_ice_sockets_ask_for_the_larger_buffer() -> None:
    assert aioice.turn.UDP_SOCKET_BUFFER_SIZE == RECEIVE_BUFFER_BYTES
    cap = int(Path("/proc/sys/net/core/rmem_max").read_text())
    if cap <= 262144:
        pytest.skip("net.core.rmem_max caps the buffer at aioice's own size")
    async with loopback_pair() as pair:
        connection: Any = pair.answerer.sctp.transport.transport._connection
        sockets = [p.transport.get_extra_info("socket") for p in connection._protocols]
        sizes = [s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) for s in sockets if s]
        assert sizes and min(sizes) >= 2 * min(cap, RECEIVE_BUFFER_BYTES)  # Linux doubles it
        await checked_transfer(pair, 50)
