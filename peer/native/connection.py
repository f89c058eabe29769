"""libdatachannel peer connections and data channels on an asyncio loop.

:class:`NativePeerConnection` and :class:`NativeDataChannel` offer the part
of aiortc's ``RTCPeerConnection`` / ``RTCDataChannel`` interface that
:mod:`peer.negotiation`, :mod:`peer.peer_link` and
:mod:`peer.webrtc_channel` use (data only: no transceivers), so one
negotiation drives either engine.

Threads: libdatachannel calls back on its own threads. Each callback only
looks its object up by id and appends the event to that connection's queue;
one ``call_soon_threadsafe`` per batch drains the queue on the loop, so
``open``, ``bufferedamountlow`` and ``close`` reach Python in the order the
library raised them.

Messages are not called back one by one: a callback needs the GIL, and the
library thread that waits for it (while the loop runs Python) is the one
that processes SCTP, so acknowledgements stall and throughput drops by half
or more. The library queues received messages itself (1,024 per channel at
most, then it stops reading the association: backpressure, no loss) and
calls "available" only when its queue goes from empty to one; the loop
then takes messages with ``rtcReceiveMessage`` until the queue is empty
(``RECEIVE_BATCH`` at a time, yielding in between). The C callbacks are module-level objects
that live as long as the process, so none is freed while the library may
still call it; after a connection is deleted its ids are unknown and its
late callbacks are dropped, and a closed loop is never touched.

Closing runs ``rtcClosePeerConnection`` and the deletes on a daemon thread
(ctypes releases the GIL), waited for at most ``CLOSE_TIMEOUT`` seconds.
At interpreter exit, connections nobody closed are closed and the library's
threads stopped (``rtcCleanup``) before Python tears itself down: a library
thread calling back into a finalizing interpreter would crash the process.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, overload
from urllib.parse import quote

from aiortc import RTCSessionDescription

from . import library as rtc

logger = logging.getLogger("peer.native")

CLOSE_TIMEOUT = 5.0
RECEIVE_BATCH = 64
"""Messages taken from one channel before the loop runs other callbacks."""
RECEIVE_QUEUE_LIMIT = 1024
"""libdatachannel's per-channel receive queue (messages)."""
RECEIVE_BUFFER = 256 * 1024
"""libdatachannel's default local max-message-size: the largest message it accepts."""
GATHER_TIMEOUT = 10.0

_STATES = {
    rtc.RTC_NEW: "new", rtc.RTC_CONNECTING: "connecting", rtc.RTC_CONNECTED: "connected",
    rtc.RTC_DISCONNECTED: "disconnected", rtc.RTC_FAILED: "failed", rtc.RTC_CLOSED: "closed",
}
_MID = re.compile(r"^a=mid:(\S+)", re.MULTILINE)
_TYP = re.compile(r"\btyp (\w+)")


class NativeError(Exception):
    """A libdatachannel call failed."""


class InvalidStateError(NativeError):
    """The channel is not open."""


def _check(result: int, what: str) -> int:
    if result < 0:
        raise NativeError(f"libdatachannel {what} failed ({result})")
    return result


# -- the thread side ----------------------------------------------------------------

_registry: dict[int, NativePeerConnection] = {}
"""pc and dc ids (one id space in libdatachannel) -> their connection."""
_registry_lock = threading.Lock()


def _post(id_: int, event: tuple[Any, ...]) -> None:
    with _registry_lock:
        owner = _registry.get(id_)
    if owner is not None:
        owner._post(event)


def _text(pointer: int | None) -> str:
    return ctypes.string_at(pointer).decode("utf-8", "replace") if pointer else ""


def _on_state(pc: int, state: int, _ptr: int | None) -> None:
    _post(pc, ("state", state))


def _on_gathering(pc: int, state: int, _ptr: int | None) -> None:
    _post(pc, ("gathering", state))


def _on_datachannel(pc: int, dc: int, _ptr: int | None) -> None:
    with _registry_lock:
        owner = _registry.get(pc)
        if owner is not None:
            _registry[dc] = owner
    if owner is not None:
        _watch(owner.lib, dc)  # before returning: no event of the channel is missed
        owner._post(("datachannel", dc))


def _on_open(dc: int, _ptr: int | None) -> None:
    _post(dc, ("open", dc))


def _on_closed(dc: int, _ptr: int | None) -> None:
    _post(dc, ("closed", dc))


def _on_error(dc: int, error: int | None, _ptr: int | None) -> None:
    _post(dc, ("error", dc, _text(error)))


def _on_available(dc: int, _ptr: int | None) -> None:
    _post(dc, ("available", dc))


def _on_low(dc: int, _ptr: int | None) -> None:
    _post(dc, ("low", dc))


# The C callbacks: module-level, so they outlive every connection.
ON_STATE = rtc.StateCallback(_on_state)
ON_GATHERING = rtc.StateCallback(_on_gathering)
ON_DATACHANNEL = rtc.DataChannelCallback(_on_datachannel)
ON_OPEN = rtc.IdCallback(_on_open)
ON_CLOSED = rtc.IdCallback(_on_closed)
ON_ERROR = rtc.ErrorCallback(_on_error)
ON_AVAILABLE = rtc.IdCallback(_on_available)
ON_LOW = rtc.IdCallback(_on_low)


_at_exit_lock = threading.Lock()
_at_exit_registered = False


def _stop_library(lib: Any) -> None:
    """At exit: close and delete what is left, then stop the library's threads (bounded)."""
    with _registry_lock:
        ids = dict(_registry)
        _registry.clear()  # from now on every callback finds nothing and returns
    connections = {owner.id for owner in ids.values()}

    def run() -> None:
        # No callback into Python after this: each set waits for a running one.
        for id_ in ids:
            if id_ in connections:
                for setter in ("rtcSetStateChangeCallback", "rtcSetGatheringStateChangeCallback"):
                    getattr(lib, setter)(id_, rtc.StateCallback())
                lib.rtcSetDataChannelCallback(id_, rtc.DataChannelCallback())
            else:
                for setter in ("rtcSetOpenCallback", "rtcSetClosedCallback",
                               "rtcSetBufferedAmountLowCallback", "rtcSetAvailableCallback"):
                    getattr(lib, setter)(id_, rtc.IdCallback())
                lib.rtcSetErrorCallback(id_, rtc.ErrorCallback())
        for pc in connections:
            lib.rtcClosePeerConnection(pc)
            lib.rtcDeletePeerConnection(pc)
        lib.rtcCleanup()

    worker = threading.Thread(target=run, name="rtc cleanup", daemon=True)
    worker.start()
    worker.join(CLOSE_TIMEOUT)


def _stop_at_exit(lib: Any) -> None:
    global _at_exit_registered
    with _at_exit_lock:
        if not _at_exit_registered:
            _at_exit_registered = True
            atexit.register(_stop_library, lib)


def _watch(lib: Any, dc: int) -> None:
    lib.rtcSetOpenCallback(dc, ON_OPEN)
    lib.rtcSetClosedCallback(dc, ON_CLOSED)
    lib.rtcSetErrorCallback(dc, ON_ERROR)
    lib.rtcSetBufferedAmountLowCallback(dc, ON_LOW)
    lib.rtcSetAvailableCallback(dc, ON_AVAILABLE)


# -- configuration ------------------------------------------------------------------

def ice_server_urls(servers: list[Any]) -> list[str]:
    """libdatachannel's ICE server URLs from aiortc ``RTCIceServer``s (pure).

    Credentials go into the URL, percent-encoded (TURN usernames hold ``:``).
    ``turns:`` and TCP TURN are skipped: the bundled ICE agent (libjuice)
    speaks UDP only.
    """
    urls: list[str] = []
    for server in servers:
        entries = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in entries:
            if not isinstance(url, str):
                continue
            scheme, _, rest = url.partition(":")
            if scheme == "stun":
                urls.append(url)
            elif scheme == "turn" and "transport=tcp" not in rest:
                user = quote(str(server.username or ""), safe="")
                password = quote(str(server.credential or ""), safe="")
                urls.append(f"turn:{user}:{password}@{rest}")
    return urls


def candidate_type(candidate: str | None) -> str | None:
    match = _TYP.search(candidate or "")
    return match.group(1) if match else None


# -- the loop side ------------------------------------------------------------------

Handler = TypeVar("Handler", bound=Callable[..., Any])


class _Emitter:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[..., Any]]] = {}

    @overload
    def on(self, event: str) -> Callable[[Handler], Handler]: ...
    @overload
    def on(self, event: str, handler: Handler) -> Handler: ...

    def on(self, event: str, handler: Any = None) -> Any:
        """``on(event, handler)``, or ``@on(event)`` as a decorator (aiortc's pyee style)."""
        def add(function: Handler) -> Handler:
            self._handlers.setdefault(event, []).append(function)
            return function
        return add if handler is None else add(handler)

    def emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            try:
                handler(*args)
            except Exception:  # a handler's bug must not stop the event pump
                logger.exception("native %s handler failed", event)


class NativeDataChannel(_Emitter):
    """One libdatachannel data channel (binary messages)."""

    def __init__(self, pc: NativePeerConnection, dc: int, label: str) -> None:
        super().__init__()
        self.transport = pc
        self.id = dc
        self.label = label
        self.readyState = "connecting"
        self._threshold = 0
        self._buffer = ctypes.create_string_buffer(RECEIVE_BUFFER)

    @property
    def bufferedAmount(self) -> int:
        if self.readyState == "closed":
            return 0
        return max(0, int(self.transport.lib.rtcGetBufferedAmount(self.id)))

    @property
    def bufferedAmountLowThreshold(self) -> int:
        return self._threshold

    @bufferedAmountLowThreshold.setter
    def bufferedAmountLowThreshold(self, value: int) -> None:
        self._threshold = value
        self.transport.lib.rtcSetBufferedAmountLowThreshold(self.id, value)

    def send(self, data: bytes) -> None:
        """Queue one binary message; InvalidStateError unless open, ValueError when too large."""
        if self.readyState != "open":
            raise InvalidStateError(f"data channel {self.label} is {self.readyState}")
        limit = self.transport.max_message_size
        if limit and len(data) > limit:
            raise ValueError(f"message of {len(data)} bytes over the remote's limit of {limit}")
        if self.transport.lib.rtcSendMessage(self.id, data, len(data)) < 0:
            raise InvalidStateError(f"data channel {self.label} refused the message")

    def close(self) -> None:
        if self.readyState not in ("closing", "closed") and not self.transport.deleted:
            self.readyState = "closing"
            self.transport.lib.rtcClose(self.id)

    def _receive(self) -> None:
        """On the loop: take what the library queued, ``RECEIVE_BATCH`` at a time."""
        if self._take(RECEIVE_BATCH):
            self.transport._loop.call_soon(self._receive)

    def _take(self, count: int) -> bool:
        """Emit up to ``count`` queued messages; True if more may be waiting."""
        lib = self.transport.lib
        size = ctypes.c_int()
        for _ in range(count):
            if self.transport.deleted:
                return False
            size.value = len(self._buffer)
            result = lib.rtcReceiveMessage(self.id, self._buffer, ctypes.byref(size))
            if result == rtc.RTC_ERR_TOO_SMALL:  # over our buffer: the remote allowed it
                self._buffer = ctypes.create_string_buffer(size.value)
                continue
            if result < 0:  # RTC_ERR_NOT_AVAIL: empty (the next one calls "available")
                return False
            self.emit("message", ctypes.string_at(self._buffer, size.value))
        return True

    def _opened(self) -> None:
        if self.readyState == "connecting":
            self.readyState = "open"
            self.emit("open")

    def _closed(self) -> None:
        if self.readyState != "closed":
            self._take(RECEIVE_QUEUE_LIMIT)  # what arrived before the close, in order
            self.readyState = "closed"
            self.emit("close")


class NativePeerConnection(_Emitter):
    """A data-only libdatachannel PeerConnection, negotiated explicitly (no auto-negotiation)."""

    def __init__(self, lib: Any, ice_servers: list[Any] | None = None) -> None:
        super().__init__()
        self.lib = lib
        _stop_at_exit(lib)
        self._loop = asyncio.get_running_loop()
        self._events: deque[tuple[Any, ...]] = deque()
        self._drain_scheduled = False
        self._channels: dict[int, NativeDataChannel] = {}
        self._gathered: asyncio.Future[None] = self._loop.create_future()
        self.connectionState = "new"
        self.signalingState = "stable"
        self._local: RTCSessionDescription | None = None
        self.remoteDescription: RTCSessionDescription | None = None
        self.deleted = False
        self.max_message_size = 0
        self.lossy: NativeDataChannel | None = None
        """The Peer's lossy channel, made with the connection (see peer.negotiation)."""
        self._closing: asyncio.Future[None] | None = None
        urls = [url.encode() for url in ice_server_urls(ice_servers or [])]
        array = (ctypes.c_char_p * max(1, len(urls)))(*urls)
        config = rtc.RtcConfiguration()
        config.iceServers = ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p))
        config.iceServersCount = len(urls)
        config.iceTransportPolicy = rtc.RTC_TRANSPORT_POLICY_ALL
        config.disableAutoNegotiation = True
        with _registry_lock:  # no callback can find the id before it is registered
            self.id = _check(lib.rtcCreatePeerConnection(ctypes.byref(config)), "create")
            _registry[self.id] = self
        lib.rtcSetStateChangeCallback(self.id, ON_STATE)
        lib.rtcSetGatheringStateChangeCallback(self.id, ON_GATHERING)
        lib.rtcSetDataChannelCallback(self.id, ON_DATACHANNEL)

    # -- events from the library's threads --------------------------------------------

    def _post(self, event: tuple[Any, ...]) -> None:
        """Any thread: queue an event; one drain per batch runs on the loop."""
        self._events.append(event)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                pass

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._events:
            self._handle(self._events.popleft())

    def _handle(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "available":
            channel = self._channels.get(event[1])
            if channel is not None:
                channel._receive()
        elif kind == "low":
            channel = self._channels.get(event[1])
            if channel is not None:
                channel.emit("bufferedamountlow")
        elif kind == "open":
            self._update_max_message_size()
            channel = self._channels.get(event[1])
            if channel is not None:
                channel._opened()
        elif kind == "closed":
            channel = self._channels.get(event[1])
            if channel is not None:
                channel._closed()
        elif kind == "error":
            logger.info("native data channel error: %s", event[2])
        elif kind == "datachannel":
            self._remote_channel(event[1])
        elif kind == "state":
            self._set_state(_STATES.get(event[1], "failed"))
        elif (kind == "gathering" and event[1] == rtc.RTC_GATHERING_COMPLETE
              and not self._gathered.done()):
            self._gathered.set_result(None)

    def _set_state(self, state: str) -> None:
        if state != self.connectionState and self.connectionState != "closed":
            self.connectionState = state
            self.emit("connectionstatechange")
        if state in ("failed", "closed"):
            for channel in list(self._channels.values()):
                channel._closed()

    def _remote_channel(self, dc: int) -> None:
        if self.deleted:
            return
        label = rtc.read_string(self.lib.rtcGetDataChannelLabel, dc) or ""
        channel = NativeDataChannel(self, dc, label)
        self._channels[dc] = channel
        self.emit("datachannel", channel)
        if self.lib.rtcIsOpen(dc):
            self._update_max_message_size()
            channel._opened()

    def _update_max_message_size(self) -> None:
        if not self.deleted:
            self.max_message_size = max(0, int(self.lib.rtcGetRemoteMaxMessageSize(self.id)))

    # -- aiortc's interface (the part negotiation uses) --------------------------------

    def createDataChannel(
        self, label: str, ordered: bool = True, maxRetransmits: int | None = None,
        negotiated: bool = False, id: int | None = None,
    ) -> NativeDataChannel:
        init = rtc.RtcDataChannelInit()
        init.reliability.unordered = not ordered
        if maxRetransmits is not None:
            init.reliability.unreliable = True
            init.reliability.maxRetransmits = maxRetransmits
        init.negotiated = negotiated
        if id is not None:
            init.manualStream = True
            init.stream = id
        with _registry_lock:
            dc = _check(self.lib.rtcCreateDataChannelEx(self.id, label.encode(),
                                                        ctypes.byref(init)), "createDataChannel")
            _registry[dc] = self
        channel = NativeDataChannel(self, dc, label)
        self._channels[dc] = channel
        _watch(self.lib, dc)
        if self.lib.rtcIsOpen(dc):  # negotiated on a connected association
            self._post(("open", dc))
        return channel

    def getTransceivers(self) -> list[Any]:
        return []

    def addTrack(self, track: Any) -> Any:
        raise NativeError("the native engine carries data only: media goes on aiortc")

    def addTransceiver(self, kind: str, direction: str = "sendrecv") -> Any:
        raise NativeError("the native engine carries data only: media goes on aiortc")

    async def createOffer(self) -> RTCSessionDescription:
        return RTCSessionDescription("", "offer")

    async def createAnswer(self) -> RTCSessionDescription:
        return RTCSessionDescription("", "answer")

    async def setLocalDescription(self, description: RTCSessionDescription) -> None:
        """Set it and wait for every local candidate, as aiortc does (no trickling out)."""
        _check(self.lib.rtcSetLocalDescription(self.id, description.type.encode()),
               "setLocalDescription")
        try:
            await asyncio.wait_for(asyncio.shield(self._gathered), GATHER_TIMEOUT)
        except TimeoutError:
            logger.info("native ICE gathering incomplete after %g s: offering what is there",
                        GATHER_TIMEOUT)
        sdp = rtc.read_string(self.lib.rtcGetLocalDescription, self.id)
        if sdp is None:
            raise NativeError("libdatachannel has no local description")
        self._local = RTCSessionDescription(sdp, description.type)
        self.signalingState = "have-local-offer" if description.type == "offer" else "stable"

    @property
    def localDescription(self) -> RTCSessionDescription:
        """Set by :meth:`setLocalDescription` (an empty offer before)."""
        return self._local or RTCSessionDescription("", "offer")

    async def setRemoteDescription(self, description: RTCSessionDescription) -> None:
        _check(self.lib.rtcSetRemoteDescription(self.id, description.sdp.encode(),
                                                description.type.encode()),
               "setRemoteDescription")
        self.remoteDescription = RTCSessionDescription(description.sdp, description.type)
        self.signalingState = "have-remote-offer" if description.type == "offer" else "stable"

    async def addIceCandidate(self, candidate: Any) -> None:
        """An aiortc ``RTCIceCandidate`` (None: end of candidates, nothing to do)."""
        if candidate is None or self.remoteDescription is None:
            return
        from aiortc.sdp import candidate_to_sdp

        mid = candidate.sdpMid
        if mid is None:
            mids = _MID.findall(self.remoteDescription.sdp)
            index = candidate.sdpMLineIndex or 0
            mid = mids[index] if index < len(mids) else (mids[0] if mids else "0")
        text = "candidate:" + candidate_to_sdp(candidate)
        if self.lib.rtcAddRemoteCandidate(self.id, text.encode(), mid.encode()) < 0:
            logger.debug("native engine ignored candidate %.75r", text)

    def selected_pair(self) -> tuple[str | None, str | None]:
        """The local and remote candidate types of the selected pair (None when unknown)."""
        if self.deleted:
            return None, None
        local = ctypes.create_string_buffer(1024)
        remote = ctypes.create_string_buffer(1024)
        if self.lib.rtcGetSelectedCandidatePair(self.id, local, 1024, remote, 1024) < 0:
            return None, None
        return candidate_type(local.value.decode()), candidate_type(remote.value.decode())

    async def close(self) -> None:
        """Close and delete on a helper thread; bounded by ``CLOSE_TIMEOUT``."""
        if self._closing is None:
            self._closing = self._loop.create_future()
            for channel in list(self._channels.values()):
                channel._closed()
            with _registry_lock:
                ids = [id_ for id_, owner in _registry.items() if owner is self and id_ != self.id]
            done = self._closing

            def finish() -> None:
                if not done.done():
                    done.set_result(None)

            def run() -> None:
                try:
                    self.lib.rtcClosePeerConnection(self.id)
                    for dc in ids:
                        self.lib.rtcDeleteDataChannel(dc)
                    self.lib.rtcDeletePeerConnection(self.id)
                finally:
                    with _registry_lock:
                        for id_ in [*ids, self.id]:
                            _registry.pop(id_, None)
                    try:
                        self._loop.call_soon_threadsafe(finish)
                    except RuntimeError:
                        pass

            self.deleted = True
            self._set_state("closed")
            threading.Thread(target=run, name=f"rtc close {self.id}", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(self._closing), CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("native peer connection %d still closing after %g s: left behind",
                           self.id, CLOSE_TIMEOUT)
