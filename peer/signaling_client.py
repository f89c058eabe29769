"""The signaling server as a peer sees it: one room, requests, events, resume.

:class:`SignalingClient` wraps one ``socketio.AsyncClient`` at a time. It
joins one room, turns every refused request into :class:`SignalingError`
with the contract's code, and hands the server's events to a
:class:`SignalingListener`. When the connection is lost (not closed by us)
and ``reconnect`` is on, one owned task reconnects with capped exponential
backoff and jitter, forever, and sends ``join {room, resume}`` with the
last resume token; when the server answers ``resume-expired`` it joins
afresh. Either way the listener's ``on_session`` gets the join ack and
whether the old identity was kept.

Requests are sent with ``emit(callback=...)`` and a future per request, so a
lost connection fails every pending request at once with
:class:`~peer.channel.PathClosed` instead of leaving it to a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Protocol

import socketio

from .channel import PathClosed
from .constants import (
    RECONNECT_DELAY_FIRST,
    RECONNECT_DELAY_MAX,
    RECONNECT_JITTER,
    SIGNALING_CONNECT_TIMEOUT,
    SIGNALING_REQUEST_TIMEOUT,
)
from .errors import SignalingError

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = SIGNALING_REQUEST_TIMEOUT
CONNECT_TIMEOUT = SIGNALING_CONNECT_TIMEOUT


class SignalingListener(Protocol):
    """What the owner of a :class:`SignalingClient` is told."""

    def on_peer_joined(self, payload: dict[str, Any]) -> None: ...
    def on_peer_left(self, payload: dict[str, Any]) -> None: ...
    def on_peer_updated(self, payload: dict[str, Any]) -> None: ...
    def on_signal(self, payload: dict[str, Any]) -> None: ...
    def on_relay(self, payload: dict[str, Any]) -> None: ...
    async def on_session(self, ack: dict[str, Any], resumed: bool) -> None:
        """A (re)join succeeded; ``resumed`` False means a new peerId."""
    def on_connection_lost(self, final: bool) -> None:
        """The server is gone; ``final`` when no reconnect will follow."""


class _AsyncClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio's client, minus one noisy failure.

    When the connection ends between a binary packet's header and its
    attachment (our own ``disconnect()`` with relays in flight), python-socketio
    has already forgotten the header and fails to decode the attachment in a
    task nobody awaits ("Task exception was never retrieved"). Drop it quietly:
    the session layer resends whatever was lost.
    """

    async def _handle_eio_message(self, data: Any) -> None:
        try:
            await super()._handle_eio_message(data)
        except ValueError as exc:
            logger.debug("dropped an undecodable packet (connected=%s): %s", self.connected, exc)


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before reconnect ``attempt`` (0, 1, ...): socket.io-client's rule.

    ``RECONNECT_DELAY_FIRST`` doubled per attempt, moved at random by up to
    ``RECONNECT_JITTER`` of itself either way, capped at ``RECONNECT_DELAY_MAX``
    (what the browser client's socket.io-client does with the same numbers).
    """
    base = RECONNECT_DELAY_FIRST * 2 ** min(attempt, 16)
    deviation: float = (rng or random).uniform(-RECONNECT_JITTER, RECONNECT_JITTER) * base
    return float(min(RECONNECT_DELAY_MAX, base + deviation))


class SignalingClient:
    """One room on the signaling server, with automatic resume."""

    def __init__(
        self,
        url: str,
        room: str,
        listener: SignalingListener,
        *,
        meta: dict[str, Any] | None = None,
        webrtc: bool = True,
        token: str | None = None,
        reconnect: bool = True,
    ) -> None:
        self.url = url
        self.room = room
        self.meta = meta or {}
        self.webrtc = webrtc
        self.token = token
        self.reconnect = reconnect
        self.resume_token: str | None = None
        self.peer_id: str | None = None
        self._listener = listener
        self._sio: socketio.AsyncClient | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._connected = asyncio.Event()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        self._connect_error: dict[str, Any] | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def start(self) -> dict[str, Any]:
        """Connect and join; returns the join ack. Raises SignalingError or ConnectionError."""
        await self._open()
        try:
            ack = await self._join({"room": self.room, "meta": self.meta, "webrtc": self.webrtc})
        except BaseException:
            self._closing = True
            await self._drop_connection()
            raise
        self._connected.set()
        return ack

    async def close(self) -> None:
        """Leave on purpose (the others see ``peer-left`` "left")."""
        self._closing = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            await asyncio.gather(self._reconnect_task, return_exceptions=True)
        await self._drop_connection()

    async def request(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One contract request; returns the ok ack or raises SignalingError / PathClosed."""
        sio = self._sio
        if sio is None or not sio.connected:
            raise PathClosed("not connected to the signaling server")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def answered(*args: Any) -> None:
            if not future.done():
                future.set_result(args[0] if args else None)

        self._pending.add(future)
        try:
            await sio.emit(event, payload, callback=answered)
            reply = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except socketio.exceptions.SocketIOError as exc:
            raise PathClosed(f"{event}: {exc}") from None
        except TimeoutError:
            raise PathClosed(f"{event}: no answer in {REQUEST_TIMEOUT:g} s") from None
        finally:
            self._pending.discard(future)
        if not isinstance(reply, dict):
            raise SignalingError("invalid-payload", f"{event}: malformed ack {reply!r:.75}")
        if reply.get("ok") is True:
            return reply
        error = reply.get("error") or {}
        raise SignalingError(str(error.get("code", "unknown")), str(error.get("message", "")))

    async def signal(self, to: str, data: dict[str, Any]) -> None:
        await self.request("signal", {"room": self.room, "to": to, "data": data})

    async def update(self, meta: dict[str, Any]) -> None:
        """Replace this peer's meta in the room; a later fresh join uses it too."""
        await self.request("update", {"room": self.room, "meta": meta})
        self.meta = meta

    async def relay(self, event: str, data: Any, to: str | None = None) -> int:
        payload: dict[str, Any] = {"room": self.room, "event": event, "data": data}
        if to is not None:
            payload["to"] = to
        reply = await self.request("relay", payload)
        delivered = reply.get("delivered", 0)
        return delivered if isinstance(delivered, int) else 0

    # -- connection ---------------------------------------------------------

    def _new_client(self) -> socketio.AsyncClient:
        # handle_sigint=False: python-engineio's own SIGINT handler would cancel
        # every task of the application and stop its loop (peer.console handles Ctrl-C).
        sio = _AsyncClient(reconnection=False, handle_sigint=False)
        listener = self._listener
        sio.on("peer-joined", _guarded(listener.on_peer_joined))
        sio.on("peer-left", _guarded(listener.on_peer_left))
        sio.on("peer-updated", _guarded(listener.on_peer_updated))
        sio.on("signal", _guarded(listener.on_signal))
        sio.on("relay", _guarded(listener.on_relay))
        sio.on("rejected", self._on_rejected)
        sio.on("connect_error", self._on_connect_error)
        sio.on("disconnect", self._make_on_disconnect(sio))
        return sio

    async def _open(self) -> None:
        sio = self._new_client()
        self._connect_error = None
        auth = {"token": self.token} if self.token is not None else None
        try:
            await sio.connect(
                self.url, auth=auth, transports=["websocket"], wait_timeout=CONNECT_TIMEOUT
            )
        except socketio.exceptions.ConnectionError as exc:
            await _quietly_disconnect(sio)
            error = self._connect_error
            if error is not None:
                raise SignalingError(
                    str(error.get("code", "unauthorized")), str(error.get("message", exc))
                ) from None
            raise ConnectionError(f"cannot reach the signaling server at {self.url}: {exc}") from None
        self._sio = sio

    async def _join(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            ack = await self.request("join", payload)
        except PathClosed as exc:
            raise ConnectionError(f"signaling server went away during join: {exc}") from None
        token = ack.get("resumeToken")
        self.resume_token = token if isinstance(token, str) else None
        peer_id = ack.get("peerId")
        if not isinstance(peer_id, str):
            raise SignalingError("invalid-payload", "join ack without a peerId")
        self.peer_id = peer_id
        logger.info("joined room %s as %s%s", self.room, peer_id,
                    " (resumed)" if ack.get("resumed") else "")
        return ack

    async def _drop_connection(self) -> None:
        self._connected.clear()
        sio, self._sio = self._sio, None
        for future in list(self._pending):
            if not future.done():
                future.set_exception(PathClosed("signaling connection lost"))
        if sio is not None:
            await _quietly_disconnect(sio)

    def _make_on_disconnect(self, sio: socketio.AsyncClient) -> Any:
        def on_disconnect(*_reason: Any) -> None:
            if sio is not self._sio or self._closing:
                return
            logger.info("signaling connection lost")
            self._connected.clear()
            self._sio = None
            for future in list(self._pending):
                if not future.done():
                    future.set_exception(PathClosed("signaling connection lost"))
            final = not self.reconnect
            self._listener.on_connection_lost(final)
            if not final and self._reconnect_task is None:
                self._reconnect_task = asyncio.get_running_loop().create_task(
                    self._reconnect_forever(), name=f"reconnect {self.room}"
                )

        return on_disconnect

    async def _reconnect_forever(self) -> None:
        attempt = 0
        try:
            while not self._closing:
                await asyncio.sleep(backoff_delay(attempt))
                attempt += 1
                try:
                    await self._open()
                    resumed = False
                    if self.resume_token is not None:
                        try:
                            ack = await self._join({"room": self.room, "resume": self.resume_token})
                            resumed = True
                        except SignalingError as exc:
                            if exc.code != "resume-expired":
                                raise
                            logger.info("resume expired: joining %s afresh", self.room)
                    if not resumed:
                        ack = await self._join(
                            {"room": self.room, "meta": self.meta, "webrtc": self.webrtc}
                        )
                except (ConnectionError, SignalingError, PathClosed) as exc:
                    logger.info("reconnect attempt %d failed: %s", attempt, exc)
                    await self._drop_connection()
                    continue
                self._connected.set()
                await self._listener.on_session(ack, resumed)
                return
        finally:
            self._reconnect_task = None

    def _on_connect_error(self, data: Any = None) -> None:
        # The server's refusal is {code, message}; python-socketio reports a
        # transport failure through the same event with a plain string.
        # python-socketio wraps it as {message, data: {code, message}}.
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        if isinstance(data, dict) and isinstance(data.get("code"), str):
            self._connect_error = data

    def _on_rejected(self, payload: Any) -> None:
        logger.warning("server rejected a request: %.200r", payload)


def _guarded(handler: Any) -> Any:
    def on_event(payload: Any = None) -> None:
        if isinstance(payload, dict):
            handler(payload)
        else:
            logger.warning("ignored a malformed server event: %.75r", payload)

    return on_event


async def _quietly_disconnect(sio: socketio.AsyncClient) -> None:
    try:
        await sio.disconnect()
    except (socketio.exceptions.SocketIOError, OSError) as exc:
        logger.debug("disconnect: %s", exc)
