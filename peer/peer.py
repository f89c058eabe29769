"""``Peer``: one room, every other peer in it, one ``emit``/``on`` API.

Per remote peer a :class:`~peer.peer_link.PeerLink` holds the exactly-once
session and the path its frames take (the server's ``relay`` until a data
channel opens, the data channel while it is open), and, when both sides have
WebRTC, the :class:`~peer.negotiation.Negotiator` that keeps trying to open
one. File transfers, both ways, are :class:`~peer.transfers.FileTransfers`'.
This module is the shell around them: what the signaling client reports
(through a private listener, :class:`_ServerEvents`), the room's peers, and
the application's handlers.

Besides the contract's events (``peer-joined``, ``peer-left``,
``peer-updated``, ``upgrade``, ``downgrade``, ``file``) a Peer raises the browser client's extras, same
names and fields: ``file-offer``, ``file-progress``, ``file-failed`` (see
:mod:`peer.transfers`) and ``track`` (peer id, aiortc ``MediaStreamTrack``: read it with ``recv()``; it
ends when its connection closes, and a rebuilt connection raises ``track``
again) and ``signaling`` (state, own id) with state one of
``connected``, ``reconnecting``, ``resumed``, ``rejoined`` (a new own id: the
resume had expired), ``closed``. Peers already in the room at ``connect()``
are announced with ``peer-joined`` too.

Handlers run one at a time, in arrival order, in one owned task; a plain
function is called, a coroutine function awaited. Their exceptions are
logged, never raised into the transport. What waits for them is bounded per
sender (``max_unhandled_messages``, ``max_unhandled_bytes``): past that, the
sender's session frames are held unacked, so its ``emit`` waits (on the data
channel and on the relay alike), and its plain relays (from clients that do
not speak the frames, which nothing can slow down) are dropped.

These library names (:data:`~peer.constants.RESERVED_EVENTS`) are the
Peer's own: ``emit``, ``request`` and ``handle`` refuse them (ReservedEvent),
and a message or plain relay that arrives under one is dropped.

Requests (``request``/``handle``) are session messages marked with an id, so
they and their answers keep the session's order and exactly-once delivery
across path switches. A request is started in arrival order by the same
dispatcher as the events, but its handler's answer is awaited in a task of
its own: a slow handler never holds up later events or requests. Answers
settle the waiting ``request`` directly, not through the dispatcher, so a
handler may itself await a request.

Owned tasks: the event dispatcher, the chore runner (async clean-up of peers
that left), one outbox writer and one negotiator per remote peer, and the
signaling client's reconnect task. ``close()`` ends them all.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, overload

from aiortc import MediaStreamTrack

from .constants import MAX_ANSWERING_PER_PEER, PEER_REQUEST_TIMEOUT, RESERVED_EVENTS
from .errors import (
    FrameError,
    MessageTooLarge,
    PeerGone,
    RequestError,
    ReservedEvent,
    SignalingError,
)
from .files import Progress
from .framing import MAX_DATAGRAM_BYTES, RELAY_EVENT, Datagram, encode_datagram
from .ice import IceServers
from .media import LocalMedia
from .native import engine
from .negotiation import Negotiator, rtc_configuration
from .path_stats import PathInfo, webrtc_path
from .peer_link import PeerInfo, PeerLink, Transport
from .relay_channel import RelayChannel
from .sealing import SEALED_EVENT, Kind, Sealer, SealError, derive_key
from .session import Delivery, Message, decode_data, encode_data
from .signaling_client import SignalingClient
from .tasks import end_if_cancelled
from .transfers import AcceptFile, FileTransfers

logger = logging.getLogger(__name__)

LIBRARY_PREFIX = "rtc-peer."
"""Relay events of this library (frames, sealed frames): never raised as application events."""
MAX_QUEUED_FOR_DATAGRAMS = 1024
"""Datagrams are dropped while this many events wait for their handlers."""
MAX_UNHANDLED_MESSAGES = 1000
"""Default bound on one sender's messages waiting for (or in) their handlers."""
MAX_UNHANDLED_BYTES = 16 * 1024 * 1024
"""Default bound on those messages' payload bytes (one larger message still passes alone)."""
Handler = Callable[[str, Any], Any]
Done = Callable[[], None]
Queued = tuple[str, str, Any, Done | None]
"""(event, sender, data, done) for ``on`` handlers; event "" for a request (data: the
Message). ``done``, when set, frees the message's room in its sender's window once handled."""
H = TypeVar("H", bound=Callable[..., Any])
FLUSH_ON_CLOSE = 3.0
"""How long ``close()`` waits for the remote peers to acknowledge what was sent."""


class Peer:
    """A peer in one room of the signaling server (see ``docs``/the contract)."""

    SignalingError = SignalingError

    def __init__(
        self,
        server_url: str,
        room: str,
        *,
        meta: dict[str, Any] | None = None,
        webrtc: bool = True,
        ice_servers: list[dict[str, Any]] | None = None,
        token: str | None = None,
        reconnect: bool = True,
        download_dir: str | os.PathLike[str] = ".",
        max_file_bytes: int | None = None,
        accept_file: AcceptFile | None = None,
        secret: str | None = None,
        ice_transport_policy: Literal["all", "relay"] = "all",
        max_unhandled_messages: int = MAX_UNHANDLED_MESSAGES,
        max_unhandled_bytes: int = MAX_UNHANDLED_BYTES,
    ) -> None:
        if max_unhandled_messages < 1 or max_unhandled_bytes < 1:
            raise ValueError("max_unhandled_messages and max_unhandled_bytes must be at least 1")
        self.server_url = server_url
        self._window = (max_unhandled_messages, max_unhandled_bytes)
        self._plain: dict[str, list[int]] = {}
        """Plain relays waiting for their handlers, per sender: [count, bytes]."""
        self.room = room
        self.meta = dict(meta or {})
        self.webrtc = webrtc
        self._transfers = FileTransfers(Path(download_dir), self._raise,
                                        max_file_bytes=max_file_bytes, accept_file=accept_file)
        self._token = token
        self._reconnect = reconnect
        self._id: str | None = None
        self._links: dict[str, PeerLink] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._request_handlers: dict[str, Handler] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._answering_for: dict[str, int] = {}
        self._signaling: SignalingClient | None = None
        self._events: asyncio.Queue[Queued] | None = None
        self._chores: asyncio.Queue[Coroutine[Any, Any, None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        if ice_transport_policy not in ("all", "relay"):
            raise ValueError(f'ice_transport_policy is "all" or "relay", not {ice_transport_policy!r}')
        self._ice = IceServers(ice_servers, self._fetch_ice_servers, ice_transport_policy)
        self._engine = engine.setting() if webrtc else "aiortc"
        """RTC_PEER_ENGINE when the Peer was made (peer.native.engine)."""
        if webrtc:
            engine.check(self._engine)  # a missing required engine fails here, not later
        self._closed = False
        self._secret = secret
        self._sealer: Sealer | None = None
        self._undecryptable = 0
        self._media = LocalMedia()

    # -- public API -----------------------------------------------------------

    @property
    def id(self) -> str:
        if self._id is None:
            raise RuntimeError("not connected: await peer.connect() first")
        return self._id

    @property
    def peers(self) -> dict[str, PeerInfo]:
        return {peer_id: link.info for peer_id, link in self._links.items()}

    @property
    def undecryptable(self) -> int:
        """Messages dropped in a room with a secret because they did not open."""
        return self._undecryptable

    @property
    def download_dir(self) -> Path:
        """Where received files are saved."""
        return self._transfers.download_dir

    @download_dir.setter
    def download_dir(self, value: str | os.PathLike[str]) -> None:
        self._transfers.download_dir = Path(value)

    def transport(self, peer_id: str) -> Transport:
        """``"webrtc"`` while a data channel to ``peer_id`` is open, else ``"relay"``."""
        return self._link(peer_id).path

    def path(self, peer_id: str) -> PathInfo:
        """``{"transport", "candidate", "rtt_ms"}`` of the path to ``peer_id`` now.

        ``candidate`` ("host", "srflx", "prflx", "relay": a TURN server relays)
        and ``rtt_ms`` (the data channel's smoothed round-trip time) are None
        while messages go through the signaling server, or when unknown.
        """
        link = self._link(peer_id)
        if link.path != "webrtc" or link.negotiator is None:
            return {"transport": link.path, "candidate": None, "rtt_ms": None}
        candidate, rtt_ms = webrtc_path(link.negotiator.peer_connection)
        return {"transport": "webrtc", "candidate": candidate, "rtt_ms": rtt_ms}

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Register ``handler(sender_id, data)`` for ``event``; also a decorator.

        Register before ``connect()`` to hear about the peers already there.
        """
        if handler is None:
            def decorator(func: H) -> H:
                self._handlers.setdefault(event, []).append(func)
                return func

            return decorator
        self._handlers.setdefault(event, []).append(handler)
        return handler

    async def connect(self) -> Self:
        """Connect and join; raises SignalingError (refused) or ConnectionError."""
        loop = asyncio.get_running_loop()
        if self._secret is not None and self._sealer is None:
            key = await asyncio.to_thread(derive_key, self._secret, self.room)
            self._sealer = Sealer(key, self.room)
        self._events = asyncio.Queue()
        self._chores = asyncio.Queue()
        self._tasks = [
            loop.create_task(self._dispatch(), name="peer events"),
            loop.create_task(self._run_chores(), name="peer chores"),
        ]
        self._signaling = SignalingClient(
            self.server_url, self.room, _ServerEvents(self),
            meta=self.meta, webrtc=self.webrtc, token=self._token, reconnect=self._reconnect,
        )
        try:
            ack = await self._signaling.start()
        except BaseException:
            await self._stop_tasks()
            raise
        self._adopt_session(ack, fresh=True)
        self._raise("signaling", "connected", self.id)
        return self

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def emit(
        self, event: str, data: Any, to: str | None = None, *, reliable: bool = True
    ) -> None:
        """Send ``data`` (a JSON value or bytes) to ``to``, or to every other peer.

        ``reliable=False``: a lossy, unordered datagram on a second data
        channel (games, telemetry): sent at once or dropped (no data channel
        open, or its buffer full), never queued and never relayed; at most
        64 KiB with its header (MessageTooLarge). Raises ReservedEvent (a
        ValueError) for a library event name.
        """
        _check_event(event)
        if not reliable:
            self._send_datagram(event, data, to)
            return
        if to is not None:
            await self._link(to).send_message(event, data)
            return
        for link in list(self._links.values()):
            try:
                await link.send_message(event, data)
            except PeerGone:
                continue

    def _send_datagram(self, event: str, data: Any, to: str | None) -> None:
        payload, binary = encode_data(data)
        if len(payload) > MAX_DATAGRAM_BYTES:
            raise MessageTooLarge(f"a datagram holds at most {MAX_DATAGRAM_BYTES} bytes")
        datagram = Datagram(event, payload, binary)
        try:
            encode_datagram(datagram)
        except FrameError as exc:
            raise MessageTooLarge(f"datagram cannot be sent: {exc}") from None
        links = [self._link(to)] if to is not None else list(self._links.values())
        for link in links:
            link.send_datagram(datagram)

    async def request(
        self, peer_id: str, event: str, data: Any, timeout: float = PEER_REQUEST_TIMEOUT
    ) -> Any:
        """Ask ``peer_id``'s handler for ``event``; return what it returned.

        Raises RequestError with ``.code`` "no-handler", "handler-error" or
        "timeout" (nothing arrived within ``timeout`` seconds, sending
        included; a late answer is dropped), PeerGone when the peer left
        meanwhile, SignalingError "unknown-peer" for a peer not in the room.
        """
        _check_event(event)
        link = self._link(peer_id)
        request_id, answer = link.requests.open()
        try:
            async with asyncio.timeout(timeout):
                await link.send_message(event, data, request=request_id)
                return await answer
        except TimeoutError:
            raise RequestError(
                "timeout", f"no answer to {event!r} from {peer_id} in {timeout:g} s"
            ) from None
        finally:
            link.requests.discard(request_id)

    def handle(self, event: str, handler: Handler | None) -> None:
        """Answer requests for ``event`` with ``handler(sender_id, data)`` (plain or async).

        Its return value (a JSON value or bytes) is the answer; an exception
        answers "handler-error" with its text. One handler per event: a new
        one replaces the old, None removes it (requests then get "no-handler").
        """
        _check_event(event)
        if handler is None:
            self._request_handlers.pop(event, None)
        else:
            self._request_handlers[event] = handler

    def add_track(self, track: MediaStreamTrack) -> None:
        """Send ``track`` (aiortc audio or video) to every peer with WebRTC, now and later.

        Peers without WebRTC (relay only, either side) get no media. The
        others raise ``track`` (our id, their copy of it).
        """
        if self._media.add(track):
            self._media_changed()

    def remove_track(self, track: MediaStreamTrack) -> None:
        """Stop sending ``track`` to everyone (their copies end); the track itself runs on."""
        if self._media.remove(track):
            self._media_changed()

    def _media_changed(self) -> None:
        for link in self._links.values():
            if link.negotiator is not None:
                link.negotiator.media_changed()

    async def update_meta(self, meta: dict[str, Any]) -> None:
        """Replace this peer's ``meta``; the others raise ``peer-updated`` (peer_id, info).

        Same rules as ``meta`` at join (a JSON object, at most 1 KiB as JSON);
        a refusal raises SignalingError with the contract's code.
        """
        if self._signaling is None:
            raise RuntimeError("not connected: await peer.connect() first")
        await self._signaling.update(dict(meta))
        self.meta = dict(meta)

    async def send_file(
        self,
        peer_id: str,
        path: str | os.PathLike[str],
        *,
        on_progress: Progress | None = None,
    ) -> str:
        """Send a file; returns its SHA-256 once the receiver confirmed it.

        Raises HashMismatch when the receiver computed another digest,
        FileTransferError when it cancelled, PeerGone when it left.
        """
        return await self._transfers.send(self._link(peer_id), path, on_progress)

    async def close(self) -> None:
        """Flush briefly, leave the room, close every connection and task."""
        if self._closed:
            return
        self._closed = True
        links = list(self._links.values())
        if links:
            flushes = [asyncio.ensure_future(link.flushed()) for link in links]
            await asyncio.wait(flushes, timeout=FLUSH_ON_CLOSE)
            for flush in flushes:
                flush.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
        for link in links:
            await self._dispose(link)
        self._links.clear()
        if self._signaling is not None:
            await self._signaling.close()
        if self._chores is not None and asyncio.current_task() not in self._tasks:
            try:  # peers that left just before: their connections close too
                await asyncio.wait_for(self._chores.join(), FLUSH_ON_CLOSE)
            except TimeoutError:
                logger.warning("clean-up of departed peers still running at close")
        if self._id is not None:
            self._raise("signaling", "closed", self._id)
        in_handler = asyncio.current_task() in self._tasks
        if self._events is not None and not in_handler:
            await self._drain_events()
        await self._stop_tasks()

    # -- what the signaling client reports (through _ServerEvents) ---------------

    def _on_peer_joined(self, payload: dict[str, Any]) -> None:
        if payload.get("room") == self.room:
            self._add_peer(payload)

    def _on_peer_left(self, payload: dict[str, Any]) -> None:
        peer_id = payload.get("peerId")
        if payload.get("room") == self.room and isinstance(peer_id, str):
            self._drop_peer(peer_id, str(payload.get("reason", "left")))

    def _on_peer_updated(self, payload: dict[str, Any]) -> None:
        link = self._links.get(str(payload.get("peerId")))
        meta = payload.get("meta")
        if payload.get("room") == self.room and link is not None and isinstance(meta, dict):
            self._update_info(link, meta)

    def _on_signal(self, payload: dict[str, Any]) -> None:
        link = self._links.get(str(payload.get("from")))
        data = payload.get("data")
        if link is None or not isinstance(data, dict):
            return
        if self._sealer is not None:
            try:
                data = self._sealer.open_signal(data, link.info.peer_id, self.id)
            except SealError as exc:
                self._undecryptable += 1
                logger.warning("dropped a signal from %s: %s", link.info.peer_id, exc)
                return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< %s signal %.75r", link.info.peer_id, data)
        if link.negotiator is not None:
            link.negotiator.signal(data)

    def _on_relay(self, payload: dict[str, Any]) -> None:
        sender = payload.get("from")
        event = payload.get("event")
        if not isinstance(sender, str) or not isinstance(event, str):
            return
        link = self._links.get(sender)
        data = payload.get("data")
        if self._sealer is not None:
            self._open_relay(link, sender, event, data)
        elif event == RELAY_EVENT:
            if link is not None and isinstance(data, bytes):
                link.receive(data)
        elif event.startswith(LIBRARY_PREFIX):
            logger.debug("dropped a %r relay from %s (no secret set)", event, sender)
        elif event in RESERVED_EVENTS:
            logger.warning("dropped a relay from %s named like a library event: %r", sender, event)
        else:  # a plain relay from a client that does not speak the frames
            self._raise_plain(event, sender, data)

    def _open_relay(self, link: PeerLink | None, sender: str, event: str, data: Any) -> None:
        """In a room with a secret only sealed frames count; everything else is dropped."""
        assert self._sealer is not None
        try:
            if event != SEALED_EVENT or not isinstance(data, bytes):
                raise SealError(f"a {event!r} relay in the clear")
            frames = self._sealer.open(data, "relay", sender, self.id)
        except SealError as exc:
            self._undecryptable += 1
            logger.warning("dropped a relay from %s: %s", sender, exc)
            return
        if link is not None:
            link.receive(frames)

    async def _on_session(self, ack: dict[str, Any], resumed: bool) -> None:
        if resumed:
            self._adopt_session(ack, fresh=False)
            self._raise("signaling", "resumed", self.id)
            return
        # A new identity: every session and connection starts over.
        self._id = str(ack["peerId"])  # before any await: new remotes must use it
        old = list(self._links.values())
        self._links.clear()
        for link in old:
            await self._dispose(link)
        present = {p.get("peerId") for p in ack.get("peers", []) if isinstance(p, dict)}
        for link in old:
            if link.info.peer_id not in present:
                self._raise("peer-left", link.info.peer_id, "disconnected")
        self._adopt_session(ack, fresh=True, announce={link.info.peer_id for link in old})
        self._raise("signaling", "rejoined", self.id)

    def _on_connection_lost(self, final: bool) -> None:
        if final:
            logger.warning("signaling connection lost; reconnect is off")
        self._raise("signaling", "closed" if final else "reconnecting", self.id)

    # -- links ----------------------------------------------------------------------

    def _adopt_session(
        self, ack: dict[str, Any], *, fresh: bool, announce: set[str] | None = None
    ) -> None:
        self._id = str(ack["peerId"])
        if fresh:
            servers = ack.get("iceServers")
            self._ice.joined(servers if isinstance(servers, list) else [])
        listed = [p for p in ack.get("peers", []) if isinstance(p, dict)]
        ids = {p.get("peerId") for p in listed}
        if not fresh:
            for peer_id in [p for p in self._links if p not in ids]:
                self._drop_peer(peer_id, "disconnected")
        for payload in listed:
            listed_id = payload.get("peerId")
            known = self._links.get(str(listed_id))
            if known is not None:
                meta = payload.get("meta")
                if isinstance(meta, dict) and meta != known.info.meta:  # changed while we were away
                    self._update_info(known, meta)
                continue
            self._add_peer(payload, quiet=bool(announce and listed_id in announce))
        if not fresh:
            for link in self._links.values():
                if link.webrtc is None:
                    link.resend_on_relay()
                    if link.negotiator is not None:
                        link.negotiator.kick()

    def _add_peer(self, payload: dict[str, Any], *, quiet: bool = False) -> None:
        peer_id = payload.get("peerId")
        if not isinstance(peer_id, str) or peer_id == self._id or peer_id in self._links:
            return
        meta = payload.get("meta")
        info = PeerInfo(peer_id, meta if isinstance(meta, dict) else {}, payload.get("webrtc") is not False)
        assert self._signaling is not None
        link = PeerLink(
            info, RelayChannel(self._signaling, peer_id, self._sealing_for(peer_id, "relay")),
            on_deliveries=self._deliver, on_path=self._on_path, on_datagram=self._on_datagram,
            max_unhandled_messages=self._window[0], max_unhandled_bytes=self._window[1],
        )
        self._links[peer_id] = link
        if self.webrtc and info.webrtc and self._id is not None:
            signaling = self._signaling

            sealer = self._sealer

            async def send_signal(data: dict[str, Any]) -> None:
                if sealer is not None:
                    data = sealer.seal_signal(data, self.id, peer_id)
                await signaling.signal(peer_id, data)

            link.negotiator = Negotiator(
                self._id, peer_id,
                configuration=rtc_configuration([]),
                ice=self._ice.configuration,
                send_signal=send_signal,
                on_channel=link.attach_channel,
                media=self._media,
                on_track=lambda track: self._raise("track", peer_id, track),
                engine_mode=self._engine,
            )
        if not quiet:
            self._raise("peer-joined", peer_id, info)

    async def _fetch_ice_servers(self) -> list[dict[str, Any]]:
        if self._signaling is None:
            raise RuntimeError("not connected")
        servers = (await self._signaling.request("ice-servers", {})).get("iceServers")
        return [s for s in servers if isinstance(s, dict)] if isinstance(servers, list) else []

    def _sealing_for(self, peer_id: str, kind: Kind) -> Callable[[bytes], bytes] | None:
        sealer = self._sealer
        if sealer is None:
            return None
        return lambda data: sealer.seal(data, kind, self.id, peer_id)

    def _update_info(self, link: PeerLink, meta: dict[str, Any]) -> None:
        link.info = replace(link.info, meta=meta)
        self._raise("peer-updated", link.info.peer_id, link.info)

    def _drop_peer(self, peer_id: str, reason: str) -> None:
        link = self._links.pop(peer_id, None)
        if link is None:
            return
        self._forget(link)
        assert self._chores is not None
        self._chores.put_nowait(self._dispose(link))
        self._raise("peer-left", peer_id, reason)

    def _forget(self, link: PeerLink) -> None:
        """Synchronous part of dropping a link: fail everything waiting on it."""
        link.forget()
        self._transfers.drop_peer(link.info.peer_id, PeerGone(f"peer {link.info.peer_id} is gone"))

    async def _dispose(self, link: PeerLink) -> None:
        self._forget(link)
        await link.close()

    def _link(self, peer_id: str) -> PeerLink:
        link = self._links.get(peer_id)
        if link is None:
            raise SignalingError("unknown-peer", f"no peer {peer_id!r} in room {self.room!r}")
        return link

    # -- what the links report ------------------------------------------------------

    def _on_path(self, link: PeerLink, path: Transport) -> None:
        self._raise("upgrade" if path == "webrtc" else "downgrade", link.info.peer_id, None)

    def _on_datagram(self, link: PeerLink, datagram: Datagram) -> None:
        if datagram.event in RESERVED_EVENTS:
            return
        if self._events is not None and self._events.qsize() >= MAX_QUEUED_FOR_DATAGRAMS:
            return  # handlers are behind: lossy means dropped, not queued without bound
        try:
            data = decode_data(datagram.payload, datagram.binary)
        except FrameError:
            return
        self._raise(datagram.event, link.info.peer_id, data)

    def _deliver(self, link: PeerLink, deliveries: list[Delivery]) -> None:
        sender = link.info.peer_id
        session = link.session
        for delivery in deliveries:
            if isinstance(delivery, Message):
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("< %s %s %.75r", sender, delivery.event, delivery.data)
                done = partial(link.handled, session, delivery.size)
                if delivery.response is not None:
                    if not link.requests.answer(delivery):
                        logger.debug("dropped a late answer from %s", sender)
                    done()
                elif delivery.request is not None:
                    if self._events is not None:
                        self._events.put_nowait(("", sender, delivery, done))
                    else:
                        done()
                elif delivery.event in RESERVED_EVENTS:
                    logger.warning("dropped a message from %s named like a library event: %r",
                                   sender, delivery.event)
                    done()
                else:
                    self._raise(delivery.event, sender, delivery.data, done)
            else:
                self._transfers.receive(link, delivery)

    def _raise_plain(self, event: str, sender: str, data: Any) -> None:
        """A plain relay: nothing can slow its sender down, so past the window it is dropped."""
        if self._events is None or event not in self._handlers:
            return
        waiting = self._plain.setdefault(sender, [0, 0])
        size = len(data) if isinstance(data, (bytes, str)) else len(repr(data))
        count, limit = self._window
        if waiting[0] and (waiting[0] >= count or waiting[1] + size > limit):
            logger.warning("dropped a %r relay from %s: %d of its messages wait for handlers",
                           event, sender, waiting[0])
            return
        waiting[0] += 1
        waiting[1] += size

        def done() -> None:
            waiting[0] -= 1
            waiting[1] -= size
            if not waiting[0] and self._plain.get(sender) is waiting:
                del self._plain[sender]

        self._raise(event, sender, data, done)

    def unhandled(self, peer_id: str) -> tuple[int, int]:
        """Messages from ``peer_id`` delivered and not yet through their handlers:
        (count, payload bytes). Bounded by ``max_unhandled_messages``/``_bytes``."""
        link = self._links.get(peer_id)
        count, size = link.session.unhandled if link is not None else (0, 0)
        plain = self._plain.get(peer_id, [0, 0])
        return count + plain[0], size + plain[1]

    # -- events and tasks -----------------------------------------------------------

    def _raise(self, event: str, sender: str, data: Any, done: Done | None = None) -> None:
        if self._events is not None and event in self._handlers:
            self._events.put_nowait((event, sender, data, done))
        elif done is not None:
            done()

    async def _dispatch(self) -> None:
        assert self._events is not None
        while True:
            end_if_cancelled()
            event, sender, data, done = await self._events.get()
            try:
                if event:
                    await self._call_handlers(event, sender, data)
                else:
                    await self._start_answer(sender, data)
            finally:
                if done is not None:
                    done()
            self._events.task_done()

    async def _start_answer(self, sender: str, message: Message) -> None:
        """Run the request's handler now, up to its first wait; answer in a task of its own.

        As in the browser, an async handler's body runs in arrival order until
        it first waits: the dispatcher goes on only once the answering task
        has started it.
        """
        handler = self._request_handlers.get(message.event)
        outcome: Any = None
        failure: str | None = None
        busy = self._answering_for.get(sender, 0)
        if handler is None:
            failure = "no-handler"
        elif busy >= MAX_ANSWERING_PER_PEER:  # a hostile or runaway peer: bounded tasks
            outcome = f"{busy} requests from this peer still running: wait for their answers"
            failure = "handler-error"
        else:
            try:
                outcome = handler(sender, message.data)
            except Exception as exc:
                logger.exception("request handler for %r failed", message.event)
                outcome, failure = f"{type(exc).__name__}: {exc}", "handler-error"
        loop = asyncio.get_running_loop()
        started = loop.create_future()
        task = loop.create_task(
            self._answer(sender, message, outcome, failure, started), name=f"answer {message.event}"
        )
        self._answering.add(task)
        self._answering_for[sender] = busy + 1
        task.add_done_callback(lambda done: self._answered(sender, done))
        await started

    def _answered(self, sender: str, task: asyncio.Task[None]) -> None:
        self._answering.discard(task)
        left = self._answering_for.pop(sender, 1) - 1
        if left:
            self._answering_for[sender] = left

    async def _answer(
        self,
        sender: str,
        message: Message,
        outcome: Any,
        failure: str | None,
        started: asyncio.Future[None],
    ) -> None:
        started.set_result(None)
        if failure == "no-handler":
            outcome = f"no handler for {message.event!r}"
        elif failure is None and inspect.isawaitable(outcome):
            try:
                outcome = await outcome
            except Exception as exc:
                logger.exception("request handler for %r failed", message.event)
                outcome, failure = f"{type(exc).__name__}: {exc}", "handler-error"
        link = self._links.get(sender)
        if link is None:
            return
        try:
            await link.send_message(message.event, outcome, response=message.request, error=failure)
        except ValueError as exc:  # the handler returned something that is not JSON or bytes
            text = f"the handler's answer cannot be sent: {exc}"
            await link.send_message(message.event, text, response=message.request,
                                    error="handler-error")
        except PeerGone:
            return

    async def _call_handlers(self, event: str, sender: str, data: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            try:
                outcome = handler(sender, data)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # an application bug must not stop the peer
                logger.exception("handler for %r failed", event)

    async def _drain_events(self) -> None:
        assert self._events is not None
        try:
            await asyncio.wait_for(self._events.join(), FLUSH_ON_CLOSE)
        except TimeoutError:
            logger.warning("handlers still busy at close")

    async def _run_chores(self) -> None:
        assert self._chores is not None
        while True:
            end_if_cancelled()
            chore = await self._chores.get()
            try:
                await chore
            finally:
                self._chores.task_done()

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for answering in list(self._answering):
            answering.cancel()
        await asyncio.gather(*self._answering, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        # close() called from a handler: the dispatcher ends when that handler returns.
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        self._tasks = []
        if self._chores is not None:
            while not self._chores.empty():
                self._chores.get_nowait().close()


class _ServerEvents:
    """The :class:`~peer.signaling_client.SignalingListener` a Peer hands its client.

    It keeps the listener's methods off the Peer's public surface: an
    application sees ``on``/``emit``/..., never ``on_relay`` or ``on_session``.
    """

    def __init__(self, peer: Peer) -> None:
        self._peer = peer

    def on_peer_joined(self, payload: dict[str, Any]) -> None:
        self._peer._on_peer_joined(payload)

    def on_peer_left(self, payload: dict[str, Any]) -> None:
        self._peer._on_peer_left(payload)

    def on_peer_updated(self, payload: dict[str, Any]) -> None:
        self._peer._on_peer_updated(payload)

    def on_signal(self, payload: dict[str, Any]) -> None:
        self._peer._on_signal(payload)

    def on_relay(self, payload: dict[str, Any]) -> None:
        self._peer._on_relay(payload)

    async def on_session(self, ack: dict[str, Any], resumed: bool) -> None:
        await self._peer._on_session(ack, resumed)

    def on_connection_lost(self, final: bool) -> None:
        self._peer._on_connection_lost(final)


def _check_event(event: str) -> None:
    if event in RESERVED_EVENTS:
        raise ReservedEvent(
            f"{event!r} is a library event name: pick another name for application messages"
        )
