"""The one-method interface both message paths implement, and the outbox.

A :class:`Channel` carries whole messages (each one or more encoded frames,
see :mod:`peer.framing`) to one remote peer: ``await channel.send(data)``
returns once the path accepted the message, waiting while the path pushes
back (a data channel's ``bufferedAmount``, a relay request's ack), and raises
:class:`PathClosed` when the path is gone. What a path loses is not its
concern: the session above resends everything unacknowledged on the next
path (see :mod:`peer.session`).

:class:`Outbox` is the single writer for one remote peer: frames queue there
and one owned task packs them into messages of at most the current path's
``max_message_bytes`` and sends them in order. Switching the path drops what
is still queued (the caller then queues ``Session.resend()``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from .errors import PeerError
from .framing import pack
from .tasks import end_if_cancelled

logger = logging.getLogger(__name__)


class PathClosed(PeerError):
    """The path can no longer carry messages (closed channel, no server)."""


class Channel(Protocol):
    """A message path to one remote peer."""

    name: str
    """``"webrtc"`` or ``"relay"``: what :meth:`peer.Peer.transport` reports."""
    max_message_bytes: int
    """Largest message :meth:`send` takes (frames are packed up to it)."""

    async def send(self, data: bytes) -> None:
        """Hand one message to the path; raises PathClosed when it cannot."""


class Outbox:
    """Ordered frames towards one remote peer, written by one owned task."""

    def __init__(self, channel: Channel, label: str) -> None:
        self._channel = channel
        self._label = label
        self._frames: list[bytes] = []
        self._generation = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"outbox {label}")
        self._task.add_done_callback(self._ended)

    @property
    def channel(self) -> Channel:
        return self._channel

    def write(self, frames: list[bytes]) -> None:
        """Queue encoded frames for the current path, in order."""
        if frames:
            self._frames.extend(frames)
            self._idle.clear()
            self._wake.set()

    def switch(self, channel: Channel, frames: list[bytes]) -> None:
        """Use ``channel`` from now on; drop what is queued, queue ``frames``."""
        self._channel = channel
        self._generation += 1
        self._frames = []
        self._idle.set()
        self.write(frames)

    async def drained(self) -> None:
        """Wait until everything queued has been handed to a path (or dropped)."""
        await self._idle.wait()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: outbox writer failed", self._label, exc_info=task.exception())

    async def _run(self) -> None:
        while True:
            end_if_cancelled()
            await self._wake.wait()
            self._wake.clear()
            while self._frames:
                channel, generation = self._channel, self._generation
                frames, self._frames = self._frames, []
                for message in pack(frames, channel.max_message_bytes):
                    try:
                        await channel.send(message)
                    except PathClosed as exc:
                        logger.debug("%s: %s path closed (%s), dropped until resend",
                                     self._label, channel.name, exc)
                        break
                    if generation != self._generation:
                        break
            if not self._frames:
                self._idle.set()
