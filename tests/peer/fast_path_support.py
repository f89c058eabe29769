"""Shared by the tests of peer/fast_path's fixes: a checked transfer between real aiortc peers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import AsyncIterator

import peer.webrtc_channel  # noqa: F401  (installs the fast path, as the Peer does)
from tests.reliability.rtc import Pair, channel_pair, send_paced
from tests.reliability.support import loopback_ice, until

MESSAGE = 64 * 1024


def numbered(count: int, size: int = MESSAGE) -> list[bytes]:
    return [struct.pack("!I", n) + os.urandom(size - 4) for n in range(count)]


@contextlib.asynccontextmanager
async def loopback_pair(**options: object) -> AsyncIterator[Pair]:
    """An open reliable ordered channel between two aiortc peers on 127.0.0.1."""
    with loopback_ice():
        async with channel_pair(**options) as pair:
            yield pair


async def checked_transfer(pair: Pair, count: int, size: int = MESSAGE, timeout: float = 60) -> None:
    """Send ``count`` numbered messages; assert each arrived once, in order, bytes intact."""
    messages = numbered(count, size)
    got: list[bytes] = []
    pair.receiver.on("message", got.append)
    await send_paced(pair.sender, messages, high=1024 * 1024)
    await until(lambda: len(got) >= count, timeout=timeout)
    assert len(got) == count
    assert [struct.unpack("!I", m[:4])[0] for m in got] == list(range(count))
    assert hashlib.sha256(b"".join(got)).hexdigest() == hashlib.sha256(b"".join(messages)).hexdigest()
