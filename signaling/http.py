"""HTTP endpoints beside Socket.IO: health, metrics, demo pages, static files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .backends.base import Backend
from .metrics import CONTENT_TYPE, Metrics
from .origins import HostPolicy, OriginPolicy, normalize, shown

BACKEND_KEY = web.AppKey("backend", Backend)
METRICS_KEY = web.AppKey("metrics", Metrics)


def web_root() -> Path:
    """The ``web/`` folder: beside the package in a checkout, or installed."""
    return Path(str(resources.files("web")))


async def healthz(request: web.Request) -> web.Response:
    reason = await request.app[BACKEND_KEY].unavailable_reason()
    if reason is None:
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable", "reason": reason}, status=503)


async def metrics(request: web.Request) -> web.Response:
    backend = request.app[BACKEND_KEY]
    request.app[METRICS_KEY].backend_up.set(0 if await backend.unavailable_reason() else 1)
    body = await request.app[METRICS_KEY].render(backend.counts)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(web_root() / "index.html")


async def demo_page(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    path = web_root() / f"{name}.html"
    if not name.isidentifier() or not path.is_file():
        raise web.HTTPNotFound(text=f"no demo page {name!r}")
    return web.FileResponse(path)


def static_cors(allowed_origins: tuple[str, ...] | None) -> Callable[
        [web.Request, web.StreamResponse], Awaitable[None]]:
    """``Access-Control-Allow-Origin`` on ``/static/*`` for the ``--allowed-origins``.

    So a page on another origin can ``import`` ``/static/rtc-peer.js`` (module
    scripts are fetched in CORS mode). Only listed origins are named (or ``*``
    when ``*`` is allowed); without ``--allowed-origins`` nothing is added, as
    only same-origin pages may connect anyway.
    """
    policy = OriginPolicy(allowed_origins)

    async def add_header(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith("/static/") or not allowed_origins:
            return
        origin = request.headers.get("Origin")
        if policy.any:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and normalize(origin) in policy.allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")
        else:
            response.headers.add("Vary", "Origin")

    return add_header


def host_guard(policy: HostPolicy, metrics: Metrics) -> Middleware:
    """Middleware: refuse, with 403, a request whose Host the policy does not answer."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not policy(host):
            metrics.refused("host", f"Host {shown(host or '')} is not a loopback name")
            return web.Response(
                status=403,
                text="this server listens on a loopback address and answers only loopback "
                "Host names (a guard against DNS rebinding); to serve another name, start "
                "it with --allowed-hosts NAME\n",
            )
        return await handler(request)

    return guard


def add_routes(app: web.Application, allowed_origins: tuple[str, ...] | None = None) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/{name}.html", demo_page)
    app.router.add_static("/static/", web_root() / "static", follow_symlinks=False)
    app.on_response_prepare.append(static_cors(allowed_origins))
