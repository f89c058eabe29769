"""``Peer``: one room, every other peer in it, one ``emit``/``on`` API.

Per remote peer a :class:`_Remote` holds the exactly-once
:class:`~peer.session.Session`, the :class:`~peer.channel.Outbox` that writes
its frames to the current path (the server's ``relay`` until a data channel
opens, the data channel while it is open), and, when both sides have WebRTC,
the :class:`~peer.negotiation.Negotiator` that keeps trying to open one.
On every path switch the session's ``resend()`` goes out first on the new
path, so the application sees each message once and in order whichever path
carried it.

Besides the contract's events (``peer-joined``, ``peer-left``, ``upgrade``,
``downgrade``, ``file``) a Peer raises the browser client's extras, same
names and fields: ``file-offer`` (senderId, :class:`FileOffered`),
``file-progress`` (peerId, :class:`FileProgress`), ``file-failed`` (peerId,
:class:`FileFailed`) and ``signaling`` (state, own id) with state one of
``connected``, ``reconnecting``, ``resumed``, ``rejoined`` (a new own id: the
resume had expired), ``closed``. Peers already in the room at ``connect()``
are announced with ``peer-joined`` too.

Handlers run one at a time, in arrival order, in one owned task; a plain
function is called, a coroutine function awaited. Their exceptions are
logged, never raised into the transport.

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
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar, overload

from aiortc import RTCDataChannel

from .channel import Outbox
from .errors import (
    FileTransferError,
    FrameError,
    HashMismatch,
    PeerError,
    SendBufferFull,
    SessionError,
    SignalingError,
)
from .files import FileReceiver, FileSender, new_file_id, safe_filename
from .framing import (
    RELAY_EVENT,
    FileBody,
    FileCancel,
    FileChunk,
    FileEnd,
    FileOffer,
    FileResult,
)
from .negotiation import Negotiator, rtc_configuration
from .relay_channel import RelayChannel
from .session import Delivery, Message, Session
from .signaling_client import SignalingClient
from .webrtc_channel import WebRTCChannel

logger = logging.getLogger(__name__)

Handler = Callable[[str, Any], Any]
H = TypeVar("H", bound=Callable[..., Any])
READ_AHEAD_BYTES = 1024 * 1024
FLUSH_ON_CLOSE = 3.0
"""How long ``close()`` waits for the remote peers to acknowledge what was sent."""


class PeerGone(PeerError):
    """The remote peer left (or this peer closed) before the operation ended."""


@dataclass(frozen=True)
class PeerInfo:
    """What the room knows about another peer."""

    peer_id: str
    meta: dict[str, Any]
    webrtc: bool


@dataclass(frozen=True)
class ReceivedFile:
    """A whole file whose SHA-256 matched, saved at ``path``."""

    name: str
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class FileOffered:
    """Raised as event ``file-offer`` when a file starts to arrive."""

    id: str
    name: str
    size: int


@dataclass(frozen=True)
class FileProgress:
    """Raised as event ``file-progress``; ``direction`` is "send" or "receive"."""

    id: str
    name: str
    size: int
    done: int
    direction: str


@dataclass(frozen=True)
class FileFailed:
    """Raised as event ``file-failed``; ``error`` says why (HashMismatch, ...)."""

    id: str
    name: str
    direction: str
    error: FileTransferError


@dataclass
class _Incoming:
    receiver: FileReceiver
    handle: BinaryIO
    part_path: Path
    last_progress: int = 0


@dataclass
class _Remote:
    info: PeerInfo
    session: Session
    relay: RelayChannel
    outbox: Outbox
    negotiator: Negotiator | None = None
    webrtc: WebRTCChannel | None = None
    timer: asyncio.TimerHandle | None = None
    progress: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    incoming: dict[str, _Incoming] = field(default_factory=dict)
    outgoing: dict[str, asyncio.Future[FileResult]] = field(default_factory=dict)
    backlog: list[FileBody] = field(default_factory=list)
    gone: bool = False


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
    ) -> None:
        self.server_url = server_url
        self.room = room
        self.meta = dict(meta or {})
        self.webrtc = webrtc
        self.download_dir = Path(download_dir)
        self._ice_servers = ice_servers
        self._token = token
        self._reconnect = reconnect
        self._id: str | None = None
        self._remotes: dict[str, _Remote] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._signaling: SignalingClient | None = None
        self._events: asyncio.Queue[tuple[str, str, Any]] | None = None
        self._chores: asyncio.Queue[Coroutine[Any, Any, None]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._configuration = rtc_configuration(ice_servers)
        self._closed = False

    # -- public API -----------------------------------------------------------

    @property
    def id(self) -> str:
        if self._id is None:
            raise RuntimeError("not connected: await peer.connect() first")
        return self._id

    @property
    def peers(self) -> dict[str, PeerInfo]:
        return {peer_id: remote.info for peer_id, remote in self._remotes.items()}

    def transport(self, peer_id: str) -> str:
        """``"webrtc"`` while a data channel to ``peer_id`` is open, else ``"relay"``."""
        return "webrtc" if self._remote(peer_id).webrtc is not None else "relay"

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
        self._events = asyncio.Queue()
        self._chores = asyncio.Queue()
        self._tasks = [
            loop.create_task(self._dispatch(), name="peer events"),
            loop.create_task(self._run_chores(), name="peer chores"),
        ]
        self._signaling = SignalingClient(
            self.server_url, self.room, self,
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

    async def emit(self, event: str, data: Any, to: str | None = None) -> None:
        """Send ``data`` (a JSON value or bytes) to ``to``, or to every other peer."""
        if to is not None:
            await self._send_message(self._remote(to), event, data)
            return
        for remote in list(self._remotes.values()):
            try:
                await self._send_message(remote, event, data)
            except PeerGone:
                continue

    async def _send_message(self, remote: _Remote, event: str, data: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("> %s %s %.75r", remote.info.peer_id, event, data)
        while True:
            try:
                frames = remote.session.send_message(event, data, self._now())
                break
            except SendBufferFull:
                await self._wait_progress(remote)
        remote.outbox.write(frames)
        self._schedule(remote)

    async def send_file(
        self,
        peer_id: str,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int, int], object] | None = None,
    ) -> str:
        """Send a file; returns its SHA-256 once the receiver confirmed it.

        Raises HashMismatch when the receiver computed another digest,
        FileTransferError when it cancelled, PeerGone when it left.
        """
        remote = self._remote(peer_id)
        source = Path(path)
        size = source.stat().st_size
        file_id = new_file_id()
        last = [0]

        def progress(done: int, total: int) -> None:
            if on_progress is not None:
                on_progress(done, total)
            if done == total or done - last[0] >= max(total // 100, 256 * 1024):
                last[0] = done
                self._raise("file-progress", peer_id, FileProgress(
                    file_id, source.name, total, done, "send"))

        sender = FileSender(file_id, source.name, size, on_progress=progress)
        result: asyncio.Future[FileResult] = asyncio.get_running_loop().create_future()
        remote.outgoing[file_id] = result
        try:
            await self._send_body(remote, sender.offer)
            with source.open("rb") as handle:  # noqa: ASYNC230 (reads go through a thread)
                block, offset = b"", 0
                while count := sender.next_read:
                    if offset >= len(block):
                        block, offset = await asyncio.to_thread(handle.read, READ_AHEAD_BYTES), 0
                    piece = block[offset : offset + count]
                    offset += len(piece)
                    await self._send_body(remote, sender.chunk(piece))
            await self._send_body(remote, sender.end())
            verdict = await result
            sender.result(verdict)
        except BaseException as exc:
            if not remote.gone and not result.done():
                self._send_control(remote, FileCancel(file_id, "sender stopped"))
            error = exc if isinstance(exc, FileTransferError) else FileTransferError(
                str(exc) or type(exc).__name__)
            self._raise("file-failed", peer_id, FileFailed(file_id, source.name, "send", error))
            raise
        finally:
            remote.outgoing.pop(file_id, None)
        return verdict.sha256

    async def close(self) -> None:
        """Flush briefly, leave the room, close every connection and task."""
        if self._closed:
            return
        self._closed = True
        remotes = list(self._remotes.values())
        if remotes:
            flushes = [asyncio.ensure_future(self._flushed(r)) for r in remotes]
            await asyncio.wait(flushes, timeout=FLUSH_ON_CLOSE)
            for flush in flushes:
                flush.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
        for remote in remotes:
            await self._dispose(remote)
        self._remotes.clear()
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

    # -- SignalingListener ------------------------------------------------------

    def on_peer_joined(self, payload: dict[str, Any]) -> None:
        if payload.get("room") == self.room:
            self._add_remote(payload)

    def on_peer_left(self, payload: dict[str, Any]) -> None:
        peer_id = payload.get("peerId")
        if payload.get("room") == self.room and isinstance(peer_id, str):
            self._remove_remote(peer_id, str(payload.get("reason", "left")))

    def on_signal(self, payload: dict[str, Any]) -> None:
        remote = self._remotes.get(str(payload.get("from")))
        data = payload.get("data")
        if remote is None or not isinstance(data, dict):
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("< %s signal %.75r", remote.info.peer_id, data)
        if remote.negotiator is not None:
            remote.negotiator.signal(data)

    def on_relay(self, payload: dict[str, Any]) -> None:
        sender = payload.get("from")
        event = payload.get("event")
        if not isinstance(sender, str) or not isinstance(event, str):
            return
        remote = self._remotes.get(sender)
        data = payload.get("data")
        if event == RELAY_EVENT:
            if remote is not None and isinstance(data, bytes):
                self._on_frames(remote, data)
        else:  # a plain relay from a client that does not speak the frames
            self._raise(event, sender, data)

    async def on_session(self, ack: dict[str, Any], resumed: bool) -> None:
        if resumed:
            self._adopt_session(ack, fresh=False)
            self._raise("signaling", "resumed", self.id)
            return
        # A new identity: every session and connection starts over.
        self._id = str(ack["peerId"])  # before any await: new remotes must use it
        old = list(self._remotes.values())
        self._remotes.clear()
        for remote in old:
            await self._dispose(remote)
        present = {p.get("peerId") for p in ack.get("peers", []) if isinstance(p, dict)}
        for remote in old:
            if remote.info.peer_id not in present:
                self._raise("peer-left", remote.info.peer_id, "disconnected")
        self._adopt_session(ack, fresh=True, announce={r.info.peer_id for r in old})
        self._raise("signaling", "rejoined", self.id)

    def on_connection_lost(self, final: bool) -> None:
        if final:
            logger.warning("signaling connection lost; reconnect is off")
        self._raise("signaling", "closed" if final else "reconnecting", self.id)

    # -- remotes ----------------------------------------------------------------

    def _adopt_session(
        self, ack: dict[str, Any], *, fresh: bool, announce: set[str] | None = None
    ) -> None:
        self._id = str(ack["peerId"])
        if fresh and self._ice_servers is None:
            servers = ack.get("iceServers")
            self._configuration = rtc_configuration(servers if isinstance(servers, list) else [])
        listed = [p for p in ack.get("peers", []) if isinstance(p, dict)]
        ids = {p.get("peerId") for p in listed}
        if not fresh:
            for peer_id in [p for p in self._remotes if p not in ids]:
                self._remove_remote(peer_id, "disconnected")
        for payload in listed:
            listed_id = payload.get("peerId")
            if listed_id in self._remotes:
                continue
            self._add_remote(payload, quiet=bool(announce and listed_id in announce))
        if not fresh:
            for remote in self._remotes.values():
                if remote.webrtc is None:
                    remote.outbox.switch(remote.relay, remote.session.resend(self._now()))
                    self._schedule(remote)
                    if remote.negotiator is not None:
                        remote.negotiator.kick()

    def _add_remote(self, payload: dict[str, Any], *, quiet: bool = False) -> None:
        peer_id = payload.get("peerId")
        if not isinstance(peer_id, str) or peer_id == self._id or peer_id in self._remotes:
            return
        meta = payload.get("meta")
        info = PeerInfo(peer_id, meta if isinstance(meta, dict) else {}, payload.get("webrtc") is not False)
        assert self._signaling is not None
        relay = RelayChannel(self._signaling, peer_id)
        remote = _Remote(info, Session(), relay, Outbox(relay, peer_id[:8]))
        self._remotes[peer_id] = remote
        if self.webrtc and info.webrtc and self._id is not None:
            signaling = self._signaling

            async def send_signal(data: dict[str, Any]) -> None:
                await signaling.signal(peer_id, data)

            remote.negotiator = Negotiator(
                self._id, peer_id,
                configuration=self._configuration,
                send_signal=send_signal,
                on_channel=lambda channel: self._upgrade(remote, channel),
            )
        if not quiet:
            self._raise("peer-joined", peer_id, info)

    def _remove_remote(self, peer_id: str, reason: str) -> None:
        remote = self._remotes.pop(peer_id, None)
        if remote is None:
            return
        self._forget(remote)
        assert self._chores is not None
        self._chores.put_nowait(self._dispose(remote))
        self._raise("peer-left", peer_id, reason)

    def _forget(self, remote: _Remote) -> None:
        """Synchronous part of dropping a remote: fail everything waiting on it."""
        remote.gone = True
        if remote.timer is not None:
            remote.timer.cancel()
        gone = PeerGone(f"peer {remote.info.peer_id} is gone")
        if not remote.progress.done():
            remote.progress.set_exception(gone)
            remote.progress.exception()  # retrieved: nobody may be waiting
        for future in remote.outgoing.values():
            if not future.done():
                future.set_exception(gone)
        for incoming in remote.incoming.values():
            _discard(incoming)
        remote.incoming.clear()

    async def _dispose(self, remote: _Remote) -> None:
        self._forget(remote)
        if remote.negotiator is not None:
            await remote.negotiator.close()
        await remote.outbox.close()

    def _remote(self, peer_id: str) -> _Remote:
        remote = self._remotes.get(peer_id)
        if remote is None:
            raise SignalingError("unknown-peer", f"no peer {peer_id!r} in room {self.room!r}")
        return remote

    # -- paths --------------------------------------------------------------------

    def _upgrade(self, remote: _Remote, channel: RTCDataChannel) -> None:
        if remote.gone:
            return
        path = WebRTCChannel(channel)

        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            if isinstance(message, bytes) and not remote.gone:
                self._on_frames(remote, message)

        channel.on("close", lambda: self._downgrade(remote, path))
        remote.webrtc = path
        remote.outbox.switch(path, remote.session.resend(self._now()))
        self._schedule(remote)
        logger.info("upgrade: data channel to %s open", remote.info.peer_id)
        self._raise("upgrade", remote.info.peer_id, None)

    def _downgrade(self, remote: _Remote, path: WebRTCChannel) -> None:
        if remote.webrtc is not path or remote.gone:
            return
        remote.webrtc = None
        remote.outbox.switch(remote.relay, remote.session.resend(self._now()))
        self._schedule(remote)
        logger.info("downgrade: data channel to %s lost, relaying", remote.info.peer_id)
        self._raise("downgrade", remote.info.peer_id, None)

    # -- session I/O ----------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _on_frames(self, remote: _Remote, data: bytes) -> None:
        try:
            deliveries = remote.session.receive(data, self._now())
        except FrameError as exc:
            logger.warning("dropped a malformed message from %s: %s", remote.info.peer_id, exc)
            return
        except SessionError as exc:
            logger.error("session with %s broken (%s): starting a new one", remote.info.peer_id, exc)
            remote.session = Session()
            self._notify_progress(remote)
            return
        self._notify_progress(remote)
        for delivery in deliveries:
            self._deliver(remote, delivery)
        remote.outbox.write(remote.session.poll(self._now()))
        self._schedule(remote)

    def _schedule(self, remote: _Remote) -> None:
        if remote.timer is not None:
            remote.timer.cancel()
            remote.timer = None
        deadline = remote.session.next_deadline()
        if deadline is not None and not remote.gone:
            remote.timer = asyncio.get_running_loop().call_at(deadline, self._on_timer, remote)

    def _on_timer(self, remote: _Remote) -> None:
        remote.timer = None
        if remote.gone:
            return
        try:
            remote.outbox.write(remote.session.poll(self._now()))
        except SessionError:
            return
        self._schedule(remote)

    def _notify_progress(self, remote: _Remote) -> None:
        backlog, remote.backlog = remote.backlog, []
        for body in backlog:
            self._send_control(remote, body)
        future = remote.progress
        remote.progress = asyncio.get_running_loop().create_future()
        if not future.done():
            future.set_result(None)

    async def _wait_progress(self, remote: _Remote) -> None:
        if remote.gone:
            raise PeerGone(f"peer {remote.info.peer_id} is gone")
        await asyncio.shield(remote.progress)

    async def _send_body(self, remote: _Remote, body: FileBody) -> None:
        while True:
            try:
                frame = remote.session.send(body, self._now())
                break
            except SendBufferFull:
                await self._wait_progress(remote)
        remote.outbox.write([frame])
        self._schedule(remote)

    def _send_control(self, remote: _Remote, body: FileBody) -> None:
        """Send a small body from a callback; parked until acks free room."""
        try:
            frame = remote.session.send(body, self._now())
        except SendBufferFull:
            remote.backlog.append(body)
            return
        remote.outbox.write([frame])
        self._schedule(remote)

    async def _flushed(self, remote: _Remote) -> None:
        while remote.session.unacked and not remote.gone:
            await self._wait_progress(remote)
        await remote.outbox.drained()

    # -- deliveries -------------------------------------------------------------------

    def _deliver(self, remote: _Remote, delivery: Delivery) -> None:
        sender = remote.info.peer_id
        if isinstance(delivery, Message):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("< %s %s %.75r", sender, delivery.event, delivery.data)
            self._raise(delivery.event, sender, delivery.data)
        elif isinstance(delivery, FileOffer):
            self._file_offer(remote, delivery)
        elif isinstance(delivery, FileChunk):
            incoming = remote.incoming.get(delivery.id)
            if incoming is None:
                return
            try:
                incoming.receiver.chunk(delivery)
            except (FileTransferError, OSError) as exc:
                self._file_failed(remote, delivery.id, str(exc))
        elif isinstance(delivery, FileEnd):
            self._file_end(remote, delivery)
        elif isinstance(delivery, FileResult):
            future = remote.outgoing.get(delivery.id)
            if future is not None and not future.done():
                future.set_result(delivery)
        elif isinstance(delivery, FileCancel):
            future = remote.outgoing.get(delivery.id)
            if future is not None and not future.done():
                future.set_exception(FileTransferError(f"receiver cancelled: {delivery.reason}"))
            incoming = remote.incoming.pop(delivery.id, None)
            if incoming is not None:
                _discard(incoming)
                name = incoming.receiver.offer.name
                logger.warning("%s cancelled file %s: %s", sender, name, delivery.reason)
                self._raise("file-failed", sender, FileFailed(delivery.id, name, "receive",
                            FileTransferError(f"{name}: sender cancelled: {delivery.reason}")))

    def _file_offer(self, remote: _Remote, offer: FileOffer) -> None:
        part = self.download_dir / f".{safe_filename(offer.name)}.{offer.id}.part"
        try:
            handle = part.open("wb")
        except OSError as exc:
            self._send_control(remote, FileCancel(offer.id, f"cannot save: {exc.strerror}"))
            return
        sender = remote.info.peer_id
        state: _Incoming

        def progress(done: int, total: int) -> None:
            if done == total or done - state.last_progress >= max(total // 100, 256 * 1024):
                state.last_progress = done
                self._raise("file-progress", sender, FileProgress(
                    offer.id, offer.name, total, done, "receive"))

        state = _Incoming(FileReceiver(offer, handle.write, on_progress=progress), handle, part)
        remote.incoming[offer.id] = state
        self._raise("file-offer", sender, FileOffered(offer.id, offer.name, offer.size))
        if offer.size == 0:
            progress(0, 0)

    def _file_end(self, remote: _Remote, end: FileEnd) -> None:
        incoming = remote.incoming.pop(end.id, None)
        if incoming is None:
            return
        offer = incoming.receiver.offer
        try:
            result = incoming.receiver.end(end)
            incoming.handle.close()
        except (FileTransferError, OSError) as exc:
            self._file_failed(remote, end.id, str(exc), incoming)
            return
        if not result.ok:
            _discard(incoming)
            logger.warning("file %s from %s: SHA-256 mismatch", offer.name, remote.info.peer_id)
            self._send_control(remote, result)
            self._raise("file-failed", remote.info.peer_id, FileFailed(
                offer.id, offer.name, "receive", HashMismatch(
                    f"{offer.name}: SHA-256 {result.sha256} differs from the sender's {end.sha256}")))
            return
        target = self.download_dir / safe_filename(offer.name)
        try:
            os.replace(incoming.part_path, target)
        except OSError as exc:
            self._file_failed(remote, end.id, f"cannot save: {exc.strerror}", incoming)
            return
        self._send_control(remote, result)
        self._raise("file", remote.info.peer_id, ReceivedFile(offer.name, offer.size, result.sha256, target))

    def _file_failed(
        self, remote: _Remote, file_id: str, reason: str, incoming: _Incoming | None = None
    ) -> None:
        incoming = incoming or remote.incoming.pop(file_id, None)
        if incoming is not None:
            _discard(incoming)
            name = incoming.receiver.offer.name
            self._raise("file-failed", remote.info.peer_id, FileFailed(
                file_id, name, "receive", FileTransferError(f"{name}: {reason}")))
        self._send_control(remote, FileCancel(file_id, reason[:200]))

    # -- events and tasks ---------------------------------------------------------------

    def _raise(self, event: str, sender: str, data: Any) -> None:
        if self._events is not None and event in self._handlers:
            self._events.put_nowait((event, sender, data))

    async def _dispatch(self) -> None:
        assert self._events is not None
        while True:
            event, sender, data = await self._events.get()
            await self._call_handlers(event, sender, data)
            self._events.task_done()

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
            chore = await self._chores.get()
            try:
                await chore
            finally:
                self._chores.task_done()

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            task.cancel()
        # close() called from a handler: the dispatcher ends when that handler returns.
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        self._tasks = []
        if self._chores is not None:
            while not self._chores.empty():
                self._chores.get_nowait().close()


def _discard(incoming: _Incoming) -> None:
    try:
        incoming.handle.close()
        incoming.part_path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove %s: %s", incoming.part_path, exc)

