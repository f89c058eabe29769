"""The fallback path: frames through the signaling server's ``relay``.

Each message is one ``relay {room, event: RELAY_EVENT, data: <frames>, to}``
request, and ``send`` returns when the server acks it: the ack is the
backpressure (one request in flight per remote peer; the session's send
buffer is the credit window). A ``rate-limited`` answer is retried after a
short pause (a refused request changed nothing); ``payload-too-large``
halves the message size for the next ones; a lost connection or an
``unknown-peer`` closes the path for this message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .channel import PathClosed
from .constants import RELAY_MESSAGE_BYTES
from .errors import SignalingError
from .framing import RELAY_EVENT
from .sealing import SEALED_EVENT
from .signaling_client import SignalingClient

logger = logging.getLogger(__name__)

MIN_MESSAGE_BYTES = 16 * 1024
RATE_LIMIT_PAUSE = 0.25
MAX_RATE_LIMIT_RETRIES = 40


class RelayChannel:
    """Frames to one remote peer through the server."""

    name = "relay"

    def __init__(
        self, signaling: SignalingClient, to: str, seal: Callable[[bytes], bytes] | None = None
    ) -> None:
        self._signaling = signaling
        self._to = to
        self._seal = seal
        """Set in a room with a secret: each message goes sealed (peer/sealing.py)."""
        self.max_message_bytes = RELAY_MESSAGE_BYTES

    async def send(self, data: bytes) -> None:
        event = RELAY_EVENT
        if self._seal is not None:
            event, data = SEALED_EVENT, self._seal(data)
        for attempt in range(MAX_RATE_LIMIT_RETRIES):
            try:
                await self._signaling.relay(event, data, to=self._to)
                return
            except SignalingError as exc:
                if exc.code == "rate-limited":
                    await asyncio.sleep(RATE_LIMIT_PAUSE * min(attempt + 1, 4))
                    continue
                if exc.code == "payload-too-large" and self.max_message_bytes > MIN_MESSAGE_BYTES:
                    self.max_message_bytes //= 2
                    logger.info("relay messages cut to %d bytes", self.max_message_bytes)
                raise PathClosed(f"relay refused: {exc}") from None
        raise PathClosed("relay still rate-limited")
