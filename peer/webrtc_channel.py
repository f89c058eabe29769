"""The direct path: frames on one reliable, ordered RTCDataChannel.

The channel is aiortc's or the native engine's (:mod:`peer.native`), which
offers the same attributes.

``send`` writes at once while the channel's ``bufferedAmount`` is under
``HIGH_WATER_BYTES`` and otherwise waits for ``bufferedamountlow`` (the
threshold is ``LOW_WATER_BYTES``), so a large transfer never queues more than
about ``HIGH_WATER_BYTES`` inside aiortc.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCDataChannel
from aiortc.exceptions import InvalidStateError

from . import fast_path
from .channel import PathClosed
from .constants import (
    DATA_CHANNEL_HIGH_WATER_BYTES,
    DATA_CHANNEL_LOW_WATER_BYTES,
    DATA_CHANNEL_MESSAGE_BYTES,
)
from .native.connection import NativeError

fast_path.install()  # issue 18: see peer/fast_path.py

CHANNEL_LABEL = "rtc-peer"
HIGH_WATER_BYTES = DATA_CHANNEL_HIGH_WATER_BYTES
LOW_WATER_BYTES = DATA_CHANNEL_LOW_WATER_BYTES


class WebRTCChannel:
    """Frames to one remote peer on an open data channel."""

    name = "webrtc"
    max_message_bytes = DATA_CHANNEL_MESSAGE_BYTES

    def __init__(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        self._low = asyncio.Event()
        self._low.set()
        channel.bufferedAmountLowThreshold = LOW_WATER_BYTES
        channel.on("bufferedamountlow", self._low.set)
        channel.on("close", self._low.set)

    @property
    def open(self) -> bool:
        return self.channel.readyState == "open"

    async def send(self, data: bytes) -> None:
        while self.channel.bufferedAmount > HIGH_WATER_BYTES:
            if not self.open:
                raise PathClosed("data channel closed")
            self._low.clear()
            await self._low.wait()
        try:
            self.channel.send(data)
        except (InvalidStateError, NativeError):
            raise PathClosed("data channel closed") from None
        except ValueError as exc:  # over the remote's max-message-size
            self.channel.close()  # the relay takes over; the session resends
            raise PathClosed(f"data channel refused a message: {exc}") from None
