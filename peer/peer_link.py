"""``PeerLink``: the link to one remote peer (mirrors ``web/static/lib/peer-link.js``).

A link owns the exactly-once :class:`~peer.session.Session` with that peer,
the :class:`~peer.channel.Outbox` that writes its frames to the current path
(the server's ``relay`` until a data channel opens, the data channel while it
is open), the session's timer, and, when both sides have WebRTC, the
:class:`~peer.negotiation.Negotiator` that keeps trying to open a channel.

The session is sans-I/O; the link is its owner: it writes what the session
returns to the current path, feeds it every message from either path, and on
every path switch sends the session's ``resend()`` first on the new path, so
the application sees each message once and in order whichever path carried it.

Writers that meet a full send buffer wait in :meth:`PeerLink.wait_progress`
for the next ack; :meth:`PeerLink.forget` wakes them with :class:`PeerGone`.

The other way round, the owner reports each delivered message as handled
(:meth:`PeerLink.handled`): past ``max_unhandled_messages``/``_bytes`` the
session holds further frames unacked, so a fast sender waits for a slow
handler on either path; the held frames go once the handlers catch up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiortc import RTCDataChannel
from aiortc.exceptions import InvalidStateError
from aiortc.rtcdatachannel import RTCDataChannelParameters

from .channel import Channel, Outbox
from .constants import DATA_CHANNEL_HIGH_WATER_BYTES, LOSSY_CHANNEL_ID, LOSSY_CHANNEL_LABEL
from .errors import FrameError, PeerGone, SendBufferFull, SessionError
from .framing import PEER_CHUNK_BYTES, Datagram, FileBody, decode_datagram, encode_datagram
from .native.connection import NativeError, NativePeerConnection
from .negotiation import Negotiator
from .relay_channel import RelayChannel
from .requests import Pending
from .session import Delivery, Session
from .webrtc_channel import WebRTCChannel

logger = logging.getLogger(__name__)

T = TypeVar("T")
Transport = Literal["webrtc", "relay"]
"""The path a link's frames take now."""


@dataclass(frozen=True)
class PeerInfo:
    """What the room knows about another peer."""

    peer_id: str
    meta: dict[str, Any]
    webrtc: bool


def now() -> float:
    """The session clock: the running loop's monotonic time."""
    return asyncio.get_running_loop().time()


class PeerLink:
    """Session, current path, timer and backpressure for one remote peer."""

    def __init__(
        self,
        info: PeerInfo,
        relay: RelayChannel,
        *,
        on_deliveries: Callable[[PeerLink, list[Delivery]], None],
        on_path: Callable[[PeerLink, Transport], None],
        on_datagram: Callable[[PeerLink, Datagram], None] | None = None,
        max_unhandled_messages: int | None = None,
        max_unhandled_bytes: int | None = None,
    ) -> None:
        self.info = info
        self._window = (max_unhandled_messages, max_unhandled_bytes)
        self.session = self._new_session()
        self.relay = relay
        self.outbox = Outbox(relay, info.peer_id[:8])
        self.negotiator: Negotiator | None = None
        self.webrtc: WebRTCChannel | None = None
        """The open data channel, or None while the frames go through the relay."""
        self.gone = False
        self._on_deliveries = on_deliveries
        self._on_path = on_path
        self._on_datagram = on_datagram
        self.lossy: RTCDataChannel | None = None
        """The unordered, unreliable channel beside the data channel (``reliable=False``)."""
        self._timer: asyncio.Handle | None = None
        self._timer_at: float | None = None
        """The deadline ``_timer`` was set for (uvloop's ``call_at`` of a past time has no ``when()``)."""
        self._progress: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._backlog: list[FileBody] = []
        self.requests = Pending()
        """Requests sent to this peer and waiting for their answer."""
        self._releasing = False

    def _new_session(self) -> Session:
        count, size = self._window
        return Session(fragment_bytes=PEER_CHUNK_BYTES, max_unhandled_messages=count,
                       max_unhandled_bytes=size)

    @property
    def path(self) -> Transport:
        return "webrtc" if self.webrtc is not None else "relay"

    # -- writing ------------------------------------------------------------------

    async def send_message(
        self,
        event: str,
        data: Any,
        *,
        request: int | None = None,
        response: int | None = None,
        error: str | None = None,
    ) -> None:
        """Sequence one application message (or request, or answer) and write it, waiting for room."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("> %s %s %.75r", self.info.peer_id, event, data)
        frames = await self._with_room(
            lambda: self.session.send_message(
                event, data, now(), request=request, response=response, error=error
            )
        )
        self._write(frames)

    async def send_body(self, body: FileBody) -> None:
        """Sequence one file-transfer body and write it, waiting for room."""
        self._write([await self._with_room(lambda: self.session.send(body, now()))])

    async def _with_room(self, sequence: Callable[[], T]) -> T:
        """``sequence()``, retried after each ack while the send buffer is full."""
        while True:
            try:
                return sequence()
            except SendBufferFull:
                await self.wait_progress()

    def send_control(self, body: FileBody) -> None:
        """Send a small body from a callback; parked until acks free room."""
        try:
            frame = self.session.send(body, now())
        except SendBufferFull:
            self._backlog.append(body)
            return
        self._write([frame])

    def _write(self, frames: list[bytes]) -> None:
        self.outbox.write(frames)
        self._schedule()

    # -- reading ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """One message from the remote peer, from either path."""
        if self.gone:
            return
        try:
            deliveries = self.session.receive(data, now())
        except FrameError as exc:
            logger.warning("dropped a malformed message from %s: %s", self.info.peer_id, exc)
            return
        except SessionError as exc:
            logger.error("session with %s broken (%s): starting a new one", self.info.peer_id, exc)
            self.session = self._new_session()
            self._notify_progress()
            return
        self._notify_progress()
        if deliveries:
            self._on_deliveries(self, deliveries)
        self._write(self.session.poll(now()))

    def handled(self, session: Session, size: int) -> None:
        """The app is done with a message of ``size`` bytes that ``session`` delivered.

        What the session held for want of room is delivered soon after, from
        the event loop (never from inside the caller's own delivery).
        """
        if session is not self.session or self.gone:
            return  # a session that broke since: its window went with it
        session.handled(size)
        if session.holding and not self._releasing:
            self._releasing = True
            asyncio.get_running_loop().call_soon(self._release)

    def _release(self) -> None:
        self._releasing = False
        if self.gone:
            return
        try:
            deliveries = self.session.release(now())
        except SessionError:
            return
        if deliveries:
            self._on_deliveries(self, deliveries)
        self._write(self.session.poll(now()))

    # -- the timer ----------------------------------------------------------------

    def _schedule(self) -> None:
        deadline = self.session.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer_at == deadline and not self.gone:
                return  # already set for it: most receives leave the deadline as it was
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self.gone:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        if self.gone:
            return
        try:
            self.outbox.write(self.session.poll(now()))
        except SessionError:
            return
        self._schedule()

    # -- paths --------------------------------------------------------------------

    def attach_channel(self, channel: RTCDataChannel) -> None:
        """The data channel is open: move to it and resend what is unacked."""
        if self.gone:
            return
        path = WebRTCChannel(channel)

        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            if isinstance(message, bytes):
                self.receive(message)

        channel.on("close", lambda: self.detach_channel(path))
        self._open_lossy(channel)
        self.webrtc = path
        self._switch(path)
        logger.info("upgrade: data channel to %s open", self.info.peer_id)
        self._on_path(self, "webrtc")

    def _open_lossy(self, channel: RTCDataChannel) -> None:
        """The lossy channel on the same association, negotiated out of band (both sides)."""
        if self.lossy is not None and self.lossy.transport is channel.transport:
            return
        if isinstance(channel.transport, NativePeerConnection):
            # Made with the connection (Negotiator._new_pc), before its association:
            # a native lossy channel made only now could miss the first datagrams.
            self.lossy = channel.transport.lossy
            if self.lossy is not None:
                self.lossy.on("message", self._on_lossy_message)
            return
        parameters = RTCDataChannelParameters(
            label=LOSSY_CHANNEL_LABEL, ordered=False, maxRetransmits=0,
            negotiated=True, id=LOSSY_CHANNEL_ID,
        )
        try:
            lossy = RTCDataChannel(channel.transport, parameters)
        except ValueError as exc:  # already there on this association
            logger.debug("no lossy channel to %s: %s", self.info.peer_id, exc)
            return
        self.lossy = lossy
        lossy.on("message", self._on_lossy_message)

    def _on_lossy_message(self, message: bytes | str) -> None:
        if self.gone or not isinstance(message, bytes) or self._on_datagram is None:
            return
        try:
            datagram = decode_datagram(message)
        except FrameError as exc:
            logger.debug("dropped a malformed datagram from %s: %s", self.info.peer_id, exc)
            return
        self._on_datagram(self, datagram)

    def send_datagram(self, datagram: Datagram) -> bool:
        """Send now on the lossy channel, or drop: False when it was dropped."""
        encoded = encode_datagram(datagram)
        lossy = self.lossy
        if (
            self.webrtc is None or lossy is None or lossy.readyState != "open"
            or lossy.bufferedAmount > DATA_CHANNEL_HIGH_WATER_BYTES
        ):
            return False
        try:
            lossy.send(encoded)
        except (InvalidStateError, ValueError, NativeError):
            return False
        return True

    def detach_channel(self, path: WebRTCChannel) -> None:
        """The data channel is gone: back to the relay, resending what is unacked."""
        if self.webrtc is not path or self.gone:
            return
        self.webrtc = None
        self._switch(self.relay)
        logger.info("downgrade: data channel to %s lost, relaying", self.info.peer_id)
        self._on_path(self, "relay")

    def resend_on_relay(self) -> None:
        """The relay path came back (signaling resumed): resend there."""
        if self.webrtc is None and not self.gone:
            self._switch(self.relay)

    def _switch(self, path: Channel) -> None:
        """Write to ``path`` from now on, starting with every unacked message."""
        self.outbox.switch(path, self.session.resend(now()))
        self._schedule()

    # -- backpressure -------------------------------------------------------------

    def _notify_progress(self) -> None:
        backlog, self._backlog = self._backlog, []
        for body in backlog:
            self.send_control(body)
        future = self._progress
        self._progress = asyncio.get_running_loop().create_future()
        if not future.done():
            future.set_result(None)

    async def wait_progress(self) -> None:
        """Return at the next ack; raise PeerGone once the peer is gone."""
        if self.gone:
            raise PeerGone(f"peer {self.info.peer_id} is gone")
        await asyncio.shield(self._progress)

    async def flushed(self) -> None:
        """Return once the remote peer acknowledged everything sent."""
        while self.session.unacked and not self.gone:
            await self.wait_progress()
        await self.outbox.drained()

    # -- the end ------------------------------------------------------------------

    def forget(self) -> None:
        """Synchronous part of closing: stop the timer, fail every waiting writer."""
        self.gone = True
        self.requests.fail_all(PeerGone(f"peer {self.info.peer_id} is gone"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._progress.done():
            self._progress.set_exception(PeerGone(f"peer {self.info.peer_id} is gone"))
            self._progress.exception()  # retrieved: nobody may be waiting

    async def close(self) -> None:
        """Forget, then close the negotiation and the outbox."""
        self.forget()
        if self.lossy is not None:
            self.lossy.close()
        if self.negotiator is not None:
            await self.negotiator.close()
        await self.outbox.close()
