"""Two aiortc RTCPeerConnections in one process, wired to each other directly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from .support import WAIT, until


@dataclass
class Pair:
    offerer: RTCPeerConnection
    answerer: RTCPeerConnection
    sender: RTCDataChannel
    receiver: RTCDataChannel


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


@contextlib.asynccontextmanager
async def channel_pair(**options: Any) -> AsyncIterator[Pair]:
    """An open data channel between two fresh connections (closed at the end)."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        incoming: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
        answerer.on("datachannel", incoming.put_nowait)
        sender = offerer.createDataChannel("t", **options)
        await negotiate(offerer, answerer)
        receiver = await asyncio.wait_for(incoming.get(), WAIT)
        await until(lambda: sender.readyState == "open" and receiver.readyState == "open")
        yield Pair(offerer, answerer, sender, receiver)
    finally:
        await offerer.close()
        await answerer.close()


async def send_paced(channel: RTCDataChannel, messages: list[bytes], high: int = 256 * 1024) -> None:
    """Send all of ``messages``, waiting while more than ``high`` bytes are buffered."""
    for message in messages:
        if channel.bufferedAmount > high:
            await until(lambda: channel.bufferedAmount <= high // 2, timeout=120, step=0.01)
        channel.send(message)
