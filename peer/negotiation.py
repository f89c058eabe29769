"""One RTCPeerConnection at a time towards one remote peer, glare-free.

The rule both peers compute: the side with the lower peerId (plain string
comparison) is the *offerer*; it creates the data channel (label
``rtc-peer``, reliable and ordered) and every offer. The other side, the
*answerer*, never offers: when it wants a new connection it sends signal data
``{type: "renegotiate"}``. aiortc has no rollback and no ``restartIce``, so
every attempt is a fresh RTCPeerConnection; an offer always replaces the
answerer's previous connection.

Signal data shapes (the server does not read them)::

    {type: "offer" | "answer", sdp}
    {type: "candidate", candidate: {candidate, sdpMid, sdpMLineIndex}}
    {type: "renegotiate"}                      "I have no working connection"
    {type: "renegotiate", kinds: [kind, ...]}  "offer with room for my media"

Media (:mod:`peer.media`): the offerer puts every local track and a receive
slot for each kind the answerer asked for (``kinds``, one entry per track,
repeats allowed) into each new connection. Since aiortc has no rollback, a
Python offerer never re-offers on a live connection: when its tracks change,
or the answerer asks for room, it builds a new one, and the session resends
what the switch left unacknowledged, so data still arrives exactly once. A
Python answerer puts its tracks on the free slots of each offer; when they do
not fit it asks with ``kinds``; when it removes a track it asks for a new
connection. A browser offerer re-offers on the same connection instead, which
the answerer takes on the same RTCPeerConnection.

aiortc gathers every candidate before ``setLocalDescription`` returns, so our
descriptions carry them all and we send no candidates; browsers trickle, and
their candidates are added with ``addIceCandidate``.

Everything for one remote peer runs in one owned task, in the order it came
(signals, timeouts, losses), since aiortc's description calls are async. An
attempt whose channel does not open within ``connect_timeout`` is closed and
the pair stays on the relay; the offerer tries again after a growing pause.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.sdp import candidate_from_sdp

from . import aioice_fixes, dtls_any_certificate
from .channel import PathClosed
from .constants import LOSSY_CHANNEL_ID, LOSSY_CHANNEL_LABEL
from .errors import SignalingError
from .media import KINDS, LocalMedia
from .native import engine
from .native.connection import NativeDataChannel, NativeError, NativePeerConnection
from .tasks import end_if_cancelled
from .webrtc_channel import CHANNEL_LABEL

aioice_fixes.install()  # B46: see peer/aioice_fixes.py
dtls_any_certificate.install()  # libdatachannel's certificates: see the module

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_SLOTS_PER_KIND = 4
"""Receive slots per kind an answerer can ask for: bounds what one remote peer costs."""
RETRY_FIRST = 2.0
RETRY_CAP = 60.0
NATIVE_RETRY = 0.05
NATIVE_QUICK_RETRIES = 3
"""Failed native set-ups retried after ``NATIVE_RETRY`` before the usual back-off
begins: see :func:`dtls_client_offer`."""

_SDP_SESSION = re.compile(r"^o=\S+ (\S+)", re.MULTILINE)
_SDP_ORIGIN = re.compile(r"^o=(\S+) \S+ ", re.MULTILINE)
_ICE_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)

SendSignal = Callable[[dict[str, Any]], Awaitable[None]]
Connection = RTCPeerConnection | NativePeerConnection
"""aiortc's, or the native engine's for data only (:mod:`peer.native`)."""
ChannelOpened = Callable[[Any], None]
"""Gets the open ``rtc-peer`` channel: an ``RTCDataChannel`` or a ``NativeDataChannel``."""
TrackReceived = Callable[[MediaStreamTrack], None]


def sdp_session(sdp: str) -> str | None:
    """The session id of an SDP's ``o=`` line: the same for every re-offer of one connection."""
    match = _SDP_SESSION.search(sdp)
    return match.group(1) if match else None


def with_fresh_session(sdp: str) -> str:
    """``sdp`` with a random ``o=`` session id.

    aiortc uses the current NTP second, so two connections made within one
    second would look like one connection re-offering to the remote side.
    """
    return _SDP_ORIGIN.sub(lambda m: f"o={m.group(1)} {secrets.randbelow(2**62) + 1} ", sdp, 1)


def _connection_key(sdp: str) -> tuple[str | None, str | None]:
    match = _ICE_UFRAG.search(sdp)
    return sdp_session(sdp), match.group(1) if match else None


def is_offerer(local_id: str, remote_id: str) -> bool:
    """The lower peerId offers (code-unit order, the same in JavaScript)."""
    return local_id < remote_id


def rtc_configuration(
    ice_servers: list[dict[str, Any]] | None, transport_policy: str = "all"
) -> RTCConfiguration:
    """An aiortc configuration from the browser's ``RTCIceServer`` dicts.

    ``transport_policy`` "relay" (the browser's ``iceTransportPolicy``) gathers
    and uses TURN relay candidates only.
    """
    servers = []
    for entry in ice_servers or []:
        if not isinstance(entry, dict) or "urls" not in entry:
            continue
        servers.append(
            RTCIceServer(
                urls=entry["urls"],
                username=entry.get("username"),
                credential=entry.get("credential"),
            )
        )
    return RTCConfiguration(
        iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy(transport_policy)
    )


class Negotiator:
    """Keeps trying to give one remote peer an open ``rtc-peer`` data channel."""

    def __init__(
        self,
        local_id: str,
        remote_id: str,
        *,
        configuration: RTCConfiguration,
        send_signal: SendSignal,
        on_channel: ChannelOpened,
        connect_timeout: float = CONNECT_TIMEOUT,
        media: LocalMedia | None = None,
        on_track: TrackReceived | None = None,
        ice: Callable[[], Awaitable[RTCConfiguration]] | None = None,
        engine_mode: str = "aiortc",
    ) -> None:
        self.remote_id = remote_id
        self._engine_mode = engine_mode
        """``RTC_PEER_ENGINE`` of the Peer (see peer.native.engine): which engine may carry data."""
        self.offerer = is_offerer(local_id, remote_id)
        self._configuration = configuration
        self._ice = ice
        """Gives the configuration of each new connection (fresh TURN credentials)."""
        self._send_signal = send_signal
        self._on_channel = on_channel
        self._connect_timeout = connect_timeout
        self._media = media or LocalMedia()
        self._on_track = on_track
        self._want: dict[str, int] = {}
        """Receive slots per kind the answerer asked for (offerer side)."""
        self._sending: dict[MediaStreamTrack, MediaStreamTrack] = {}
        """Local track -> its subscription on the current connection."""
        self._pc: Connection | None = None
        self._attempt = 0
        self._established = False
        self._failures = 0
        self._quick_retries = 0
        self._remote_session: tuple[str | None, str | None] | None = None
        self._early_candidates: list[Any] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._gathering: asyncio.Future[None] | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"negotiation {remote_id[:8]}"
        )
        if self.offerer:
            self._inbox.put_nowait(("attempt", None))

    @property
    def peer_connection(self) -> Connection | None:
        return self._pc

    def signal(self, data: dict[str, Any]) -> None:
        """Signal data from the remote peer, in the order it arrived."""
        self._inbox.put_nowait(("signal", data))

    def media_changed(self) -> None:
        """The local tracks changed: bring every connection up to date."""
        self._inbox.put_nowait(("media", None))

    def kick(self) -> None:
        """Try now if there is no working connection (e.g. after a resume)."""
        self._inbox.put_nowait(("kick", None))

    async def _signal_out(self, data: dict[str, Any]) -> None:
        logger.debug("> %s signal %.75r", self.remote_id, data)
        await self._send_signal(data)

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._gathering is not None:
            await asyncio.gather(self._gathering, return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
        await self._close_pc()

    # -- the task -------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            end_if_cancelled()
            kind, arg = await self._inbox.get()
            try:
                await self._handle(kind, arg)
            except (PathClosed, SignalingError) as exc:
                logger.info("negotiation with %s: signaling failed: %s", self.remote_id, exc)
                await self._attempt_failed()
            except NativeError as exc:
                # Recovered by the next attempt; seen when an answer to an earlier
                # offer meets a rebuilt connection (answers name no offer, and a
                # data-only one cannot be told apart by its media): not a warning.
                logger.info("negotiation with %s failed on the native engine, retrying: %r",
                            self.remote_id, exc)
                await self._attempt_failed(native=True)
            except (
                InternalError, InvalidAccessError, InvalidStateError, OperationError,
                ValueError, TypeError, KeyError, IndexError, AssertionError, OSError,
            ) as exc:
                # aiortc raises these for SDP it cannot use (it asserts on some).
                logger.warning("negotiation with %s failed: %r", self.remote_id, exc)
                await self._attempt_failed()

    async def _handle(self, kind: str, arg: Any) -> None:
        if kind == "attempt":
            if self.offerer and self._pc is None:
                await self._offer()
        elif kind == "kick":
            if self._pc is None:
                if self.offerer:
                    await self._offer()
                else:
                    await self._signal_out({"type": "renegotiate"})
        elif kind == "signal":
            await self._on_signal(arg)
        elif kind == "media":
            await self._update_media()
        elif kind == "timeout":
            if arg == self._attempt and not self._established and self._pc is not None:
                logger.info("no data channel to %s within %g s: staying on relay",
                            self.remote_id, self._connect_timeout)
                await self._attempt_failed()
        elif kind == "lost" and arg is self._pc:
            was_established = self._established
            await self._close_pc()
            if not was_established:
                await self._attempt_failed(native=isinstance(arg, NativePeerConnection))
            elif self.offerer:
                await self._offer()
            else:
                await self._signal_out({"type": "renegotiate"})

    async def _on_signal(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "offer" and isinstance(data.get("sdp"), str):
            if self.offerer:
                logger.warning("%s sent an offer, but we offer to it: ignored", self.remote_id)
                return
            await self._answer(data["sdp"])
        elif kind == "answer" and isinstance(data.get("sdp"), str):
            pc = self._pc
            if pc is not None and pc.signalingState == "have-local-offer":
                if _media_kinds(data["sdp"]) != _media_kinds(pc.localDescription.sdp):
                    # Answers name no offer: this one answers an earlier offer of ours
                    # (one with other media); the answer to this offer is on its way.
                    logger.debug("ignored an answer to an earlier offer from %s", self.remote_id)
                    return
                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
                await self._flush_candidates(pc)
        elif kind == "candidate":
            await self._add_candidate(data.get("candidate"))
        elif kind == "renegotiate":
            kinds = data.get("kinds")
            if isinstance(kinds, list) and kinds:
                if self.offerer:
                    self._want_slots(kinds)
                    # An offer with room on its way already answers it: another
                    # one now would meet that offer's answer (answers name no offer).
                    pc = self._pc
                    if pc is None or self._established or not self._has_room(pc):
                        await self._offer()
            elif self.offerer and (self._pc is None or self._established):
                await self._offer()
        else:
            logger.debug("ignored signal %.75r from %s", data, self.remote_id)

    def _want_slots(self, kinds: list[Any]) -> None:
        for kind in KINDS:
            count = min(MAX_SLOTS_PER_KIND, sum(1 for k in kinds if k == kind))
            self._want[kind] = max(self._want.get(kind, 0), count)

    def _has_room(self, pc: Connection) -> bool:
        kinds = [t.kind for t in pc.getTransceivers()]
        return all(kinds.count(kind) >= count for kind, count in self._want.items())

    async def _update_media(self) -> None:
        if self._pc is None:
            if not self.offerer and self._media.tracks:
                await self._signal_out({"type": "renegotiate"})
            return  # the next connection takes the tracks as they are then
        if self.offerer:
            await self._offer()
        elif any(track not in self._media.tracks for track in self._sending):
            await self._signal_out({"type": "renegotiate"})  # removed: a new connection
        elif any(track not in self._sending for track in self._media.tracks):
            await self._ask_for_room()

    async def _ask_for_room(self) -> None:
        kinds = [track.kind for track in self._media.tracks]
        await self._signal_out({"type": "renegotiate", "kinds": kinds})

    def _send_track(self, pc: Connection, track: MediaStreamTrack) -> None:
        proxy = self._media.subscribe(track)
        self._sending[track] = proxy
        pc.addTrack(proxy)

    def _fill_slots(self, pc: Connection) -> bool:
        """Put the local tracks on the offer's free slots; False if some did not fit."""
        fitted = True
        for track in self._media.tracks:
            if track in self._sending:
                continue
            free = any(
                t.kind == track.kind and t.mid is not None and t.sender.track is None
                for t in pc.getTransceivers()
            )
            if free:
                self._send_track(pc, track)
            else:
                fitted = False
        return fitted

    async def _offer(self) -> None:
        pc = await self._new_pc(media=bool(self._media.tracks or any(self._want.values())))
        for track in self._media.tracks:
            self._send_track(pc, track)
        for kind, count in self._want.items():
            present = sum(1 for t in pc.getTransceivers() if t.kind == kind)
            for _ in range(count - present):
                pc.addTransceiver(kind, direction="recvonly")
        channel = pc.createDataChannel(CHANNEL_LABEL, ordered=True)
        self._watch_channel(pc, channel)
        await self._set_local_description(pc, await pc.createOffer())
        if pc is self._pc:
            sdp = with_fresh_session(pc.localDescription.sdp)
            if isinstance(pc, NativePeerConnection):
                sdp = dtls_client_offer(sdp)
            await self._signal_out({"type": "offer", "sdp": sdp})

    async def _answer(self, sdp: str) -> None:
        session = _connection_key(sdp)
        pc = self._pc
        media = bool(self._media.tracks) or any(k in KINDS for k in _media_kinds(sdp))
        if isinstance(pc, NativePeerConnection) and media and session == self._remote_session:
            # A browser re-offers with media on a data-only native connection:
            # ask for a new connection, which the next offer (with media) gets.
            logger.info("%s re-offered with media: asking for a new connection", self.remote_id)
            await self._close_pc()
            await self._signal_out({"type": "renegotiate"})
            return
        if pc is None or self._remote_session is None or session != self._remote_session:
            pc = await self._new_pc(media=media)

            @pc.on("datachannel")
            def on_datachannel(channel: RTCDataChannel) -> None:
                if channel.label == CHANNEL_LABEL:
                    self._watch_channel(pc, channel)

        self._remote_session = session
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await self._flush_candidates(pc)
        fitted = self._fill_slots(pc)
        await self._set_local_description(pc, await pc.createAnswer())
        if pc is self._pc:
            await self._signal_out({"type": "answer", "sdp": pc.localDescription.sdp})
            if not fitted:
                await self._ask_for_room()

    async def _set_local_description(
        self, pc: Connection, description: RTCSessionDescription
    ) -> None:
        """``setLocalDescription``, which gathers the candidates, run to its end.

        aioice leaks the UDP sockets of a gathering cancelled half-way, so a
        ``close()`` meanwhile waits for it (milliseconds for host candidates,
        aioice's 5 s at most for STUN) and then closes them with the connection.
        """
        self._gathering = asyncio.ensure_future(pc.setLocalDescription(description))
        await asyncio.shield(self._gathering)

    async def _add_candidate(self, raw: Any) -> None:
        pc = self._pc
        if not isinstance(raw, dict):
            return
        if pc is None or pc.remoteDescription is None:
            self._early_candidates.append(raw)  # before the description it belongs to
            del self._early_candidates[:-64]
            return
        text = raw.get("candidate")
        if not text:  # end of candidates
            await pc.addIceCandidate(None)
            return
        if not isinstance(text, str):
            return
        text = text.removeprefix("candidate:")
        if len(text.split()) < 8:  # aiortc asserts this, so check it first
            logger.debug("ignored malformed candidate %.75r", text)
            return
        try:
            candidate = candidate_from_sdp(text)
        except (ValueError, IndexError):  # a bad candidate is skipped, not the negotiation
            logger.debug("ignored malformed candidate %.75r", text)
            return
        mid, index = raw.get("sdpMid"), raw.get("sdpMLineIndex")
        candidate.sdpMid = mid if isinstance(mid, str) else None
        candidate.sdpMLineIndex = index if isinstance(index, int) else None
        if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
            candidate.sdpMLineIndex = 0
        await pc.addIceCandidate(candidate)

    async def _flush_candidates(self, pc: Connection) -> None:
        early, self._early_candidates = self._early_candidates, []
        for raw in early:
            if pc is self._pc:
                await self._add_candidate(raw)

    # -- connections ----------------------------------------------------------

    async def _new_pc(self, *, media: bool) -> Connection:
        await self._close_pc()
        self._remote_session = None
        self._early_candidates = []
        self._attempt += 1
        attempt = self._attempt
        if self._ice is not None:
            self._configuration = await self._ice()
        policy = str(self._configuration.iceTransportPolicy.value)
        lib = engine.native_library(self._engine_mode, media=media, transport_policy=policy)
        pc: Connection
        if lib is not None:
            pc = NativePeerConnection(lib, self._configuration.iceServers)
            # The lossy channel is negotiated out of band. Created here, before the
            # association exists, on both sides: created at upgrade, a datagram
            # could reach a side that had not made it yet, and libdatachannel then
            # closed the lossy channel at both ends (one connection in six).
            pc.lossy = pc.createDataChannel(
                LOSSY_CHANNEL_LABEL, ordered=False, maxRetransmits=0, negotiated=True, id=LOSSY_CHANNEL_ID,
            )
        else:
            pc = RTCPeerConnection(self._configuration)
        self._pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if pc is self._pc and self._on_track is not None:
                self._on_track(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed":
                self._inbox.put_nowait(("lost", pc))

        self._after(self._connect_timeout, ("timeout", attempt))
        return pc

    def _after(self, delay: float, command: tuple[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._timers = [t for t in self._timers if t.when() > now]
        self._timers.append(loop.call_later(delay, self._inbox.put_nowait, command))

    def _watch_channel(self, pc: Connection, channel: RTCDataChannel | NativeDataChannel) -> None:
        def opened() -> None:
            if pc is self._pc and not self._established:
                self._established = True
                self._failures = 0
                self._quick_retries = 0
                self._on_channel(channel)

        channel.on("open", opened)
        channel.on("close", lambda: self._inbox.put_nowait(("lost", pc)))
        if channel.readyState == "open":
            opened()

    async def _close_pc(self) -> None:
        pc, self._pc = self._pc, None
        self._established = False
        sending, self._sending = self._sending, {}
        for proxy in sending.values():
            proxy.stop()
        if pc is not None:
            # Shielded: a close() of ours cancelling the task meanwhile must not
            # leave this connection half closed (its ICE sockets open).
            closing = asyncio.ensure_future(pc.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            await asyncio.shield(closing)

    async def _attempt_failed(self, *, native: bool = False) -> None:
        await self._close_pc()
        if not self.offerer:
            return
        if native and self._quick_retries < NATIVE_QUICK_RETRIES:
            # libdatachannel's set-up race, or an answer to an earlier offer meeting
            # a rebuilt connection: over by now, and each try costs milliseconds.
            self._quick_retries += 1
            self._after(NATIVE_RETRY, ("attempt", None))
            return
        delay = min(RETRY_CAP, RETRY_FIRST * 2**self._failures)
        self._failures += 1
        self._after(delay, ("attempt", None))


def dtls_client_offer(sdp: str) -> str:
    """An offer whose sender will be the DTLS client (``a=setup:active``).

    The answerer's ICE usually connects first; as DTLS client it would send
    its ClientHello before the offerer is ready for it, and the first
    retransmission comes a second later (libdatachannel's DTLS timer). With
    the offerer as client the handshake starts when both ends are ready:
    setup drops from ~1 s to milliseconds. RFC 8842 allows ``active`` in an
    offer; aiortc and browsers answer ``passive``.

    The cost: libdatachannel (0.22 and 0.24) checks the answerer's certificate
    against the stored answer, and when ICE connects while
    ``setRemoteDescription`` is still under way (the answerer's checks arrive
    first; its answer carries its candidates) the check finds none and the
    handshake fails. The window is microseconds long, so the race needs a
    loopback path and a busy machine that preempts this thread inside it
    (about one set-up in 40 back to back; more under heavy load). Such a
    failure is seen within milliseconds and retried after ``NATIVE_RETRY``, up
    to ``NATIVE_QUICK_RETRIES`` times, before the usual back-off. Holding the
    candidates back until the answer is stored closes the window but costs
    every set-up about 50 ms (libjuice paces its triggered checks), more than
    the race costs.
    """
    return sdp.replace("a=setup:actpass", "a=setup:active")


def _media_kinds(sdp: str) -> list[str]:
    """The media sections of a description, in order: ``["video", "application"]``."""
    return [line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]
