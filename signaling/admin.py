"""The admin API: ``/admin/rooms...`` over HTTP, for whoever runs the server.

Off unless ``--admin-token`` is set (then the routes do not exist: 404).
Every request needs ``Authorization: Bearer <token>``, compared in constant
time. It sees the whole cluster through the backend. Errors answer
``{"error": {"code", "message"}}`` with the contract's codes where one fits.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from .errors import InvalidPayload, PayloadTooLarge, SignalingError, Unavailable, UnknownPeer
from .protocol import event_name, peer_id, room_name
from .service import SignalingService

BODY_SLACK = 64 * 1024  # room, event name and JSON framing around a relay's data
BODY_SECONDS = 10.0
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

_STATUS: dict[type[SignalingError], int] = {
    InvalidPayload: 400,
    PayloadTooLarge: 413,
    UnknownPeer: 404,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class AdminApi:
    def __init__(self, service: SignalingService, token: str) -> None:
        self.service = service
        self._token = token.encode()
        self.max_body = service.settings.max_relay_bytes + BODY_SLACK

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/admin/rooms", self._guard(self.list_rooms))
        app.router.add_get("/admin/rooms/{room}", self._guard(self.peek))
        app.router.add_post("/admin/rooms/{room}/kick", self._guard(self.kick))
        app.router.add_post("/admin/rooms/{room}/relay", self._guard(self.relay))

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return _error(401, "unauthorized", "send Authorization: Bearer <the --admin-token>",
                              **{"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(given.strip().encode(), self._token):
                return _error(403, "unauthorized", "this bearer token is not the server's --admin-token")
            try:
                return await handler(request)
            except SignalingError as exc:
                status = 503 if isinstance(exc, Unavailable) else _STATUS.get(type(exc), 400)
                return _error(status, exc.code, exc.message)

        return guarded

    async def _body(self, request: web.Request) -> dict[str, Any]:
        length = request.content_length
        if length is None:
            raise InvalidPayload("send the JSON body with a Content-Length")
        if length > self.max_body:
            raise PayloadTooLarge(f"body of {length} bytes, over {self.max_body}")
        try:
            async with asyncio.timeout(BODY_SECONDS):
                raw = await request.read()
        except TimeoutError:
            raise InvalidPayload(f"the body did not arrive within {BODY_SECONDS:g} s") from None
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidPayload(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidPayload("the body must be a JSON object")
        return body

    async def list_rooms(self, request: web.Request) -> web.Response:
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise InvalidPayload(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
        rooms = await self.service.list_rooms(int(text))
        return web.json_response({"rooms": [{"room": room, "peers": n} for room, n in rooms]})

    async def peek(self, request: web.Request) -> web.Response:
        room = room_name(request.match_info["room"])
        peers = await self.service.peek(room)
        if not peers:
            return _error(404, "not-found", f"room {room!r} is empty")
        return web.json_response({"room": room, "peers": peers})

    async def kick(self, request: web.Request) -> web.Response:
        room = room_name(request.match_info["room"])
        body = await self._body(request)
        await self.service.kick(room, peer_id(body.get("peerId"), "peerId"))
        return web.json_response({"ok": True})

    async def relay(self, request: web.Request) -> web.Response:
        room = room_name(request.match_info["room"])
        body = await self._body(request)
        event = event_name(body.get("event"))
        if "data" not in body:
            raise InvalidPayload('the body needs "data" (any JSON value)')
        delivered = await self.service.server_relay(room, event, body["data"])
        if delivered is None:
            return _error(404, "not-found", f"room {room!r} is empty")
        return web.json_response({"ok": True, "delivered": delivered})
