"""HTTP endpoints beside Socket.IO: health, metrics, demo pages, static files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from .backends.base import Backend
from .metrics import CONTENT_TYPE, Metrics

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


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get("/{name}.html", demo_page)
    app.router.add_static("/static/", web_root() / "static", follow_symlinks=False)
