"""Assembles the server: backend, service, Socket.IO gateway, HTTP; runs it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from aiohttp import web

from .admin import AdminApi
from .backends.base import Backend
from .backends.memory import MemoryBackend
from .gateway import Gateway
from .http import BACKEND_KEY, METRICS_KEY, add_routes, host_guard
from .metrics import Metrics
from .origins import HostPolicy
from .service import SignalingService
from .settings import Settings
from .webhooks import Webhooks, WebhookTallies

log = logging.getLogger("signaling")

GATEWAY_KEY = web.AppKey("gateway", Gateway)
ENGINEIO_PATH = "/socket.io/"
SHUTDOWN_SECONDS = 3.0


def make_backend(settings: Settings) -> Backend:
    if settings.redis_url is None:
        return MemoryBackend()
    try:
        from .backends.redis import RedisBackend
    except ImportError as exc:  # the optional extra is missing
        raise SystemExit(
            f"--redis-url needs the redis package ({exc}): pip install 'rtc-signaling[redis]'"
        ) from None
    return RedisBackend(
        settings.redis_url,
        resume_grace=settings.resume_grace,
        prefix=f"{settings.redis_prefix}:",
    )


def create_app(settings: Settings, backend: Backend | None = None) -> web.Application:
    backend = backend or make_backend(settings)
    metrics = Metrics()
    hooks = _webhooks(settings, metrics)
    service = SignalingService(settings, backend, counter=metrics, events=hooks)
    gateway = Gateway(settings, service, metrics)
    host_policy = HostPolicy(settings.host, settings.allowed_hosts)  # DNS rebinding guard
    app = web.Application(client_max_size=settings.max_http_buffer_size + 1024,
                          middlewares=[host_guard(host_policy, metrics)])
    app[BACKEND_KEY] = backend
    app[METRICS_KEY] = metrics
    app[GATEWAY_KEY] = gateway

    async def engineio_endpoint(request: web.Request) -> web.StreamResponse:
        return await gateway.engine.handle(request)

    app.router.add_route("*", ENGINEIO_PATH, engineio_endpoint)
    add_routes(app, settings.allowed_origins)
    if settings.admin_token is not None:  # never on by default
        AdminApi(service, settings.admin_token).add_routes(app)
    app.cleanup_ctx.append(_lifecycle(settings, backend, service, gateway))
    if hooks is not None:
        app.cleanup_ctx.append(_webhook_lifecycle(hooks))

    async def close_sessions(app: web.Application) -> None:
        # Before aiohttp waits for open handlers: end websockets and long-polls.
        await gateway.close_all()

    app.on_shutdown.append(close_sessions)
    return app


def _lifecycle(
    settings: Settings, backend: Backend, service: SignalingService, gateway: Gateway
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        await backend.start(gateway.deliver)
        tasks = [
            asyncio.create_task(_reap(service, settings), name="resume-reaper"),
            asyncio.create_task(_watch_loop_lag(gateway.metrics), name="loop-lag"),
        ]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await backend.close()

    return run


def _webhooks(settings: Settings, metrics: Metrics) -> Webhooks | None:
    if settings.webhook_url is None or settings.webhook_secret is None:
        return None
    hooks = Webhooks(settings.webhook_url, settings.webhook_secret)
    metrics.registry.register(WebhookTallies(hooks))
    return hooks


def _webhook_lifecycle(hooks: Webhooks) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        await hooks.start()
        yield
        await hooks.close()

    return run


LAG_SAMPLE_SECONDS = 1.0


async def _watch_loop_lag(metrics: Metrics) -> None:
    """Sample how late a timer fires: the server's event-loop lag."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_SAMPLE_SECONDS
        await asyncio.sleep(LAG_SAMPLE_SECONDS)
        metrics.loop_lag.set(max(0.0, loop.time() - due))


async def _reap(service: SignalingService, settings: Settings) -> None:
    """Say goodbye for lost peers whose resume grace has run out."""
    interval = min(1.0, max(0.05, settings.resume_grace / 4))
    task = asyncio.current_task()
    # Not ``while True``: a cancel that lands inside redis-py can come out as a
    # connection error (caught below, or turned into ``unavailable`` in the
    # backend); shutdown, which cancels this task and awaits it, would then
    # wait for ever (a bench node once hung so after SIGTERM).
    while task is None or not task.cancelling():
        await asyncio.sleep(interval)
        try:
            await service.expire()
        except Exception:  # keep reaping whatever one round hit
            log.exception("resume reaper round failed")


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM; print the ready line once listening."""
    with contextlib.ExitStack() as stack:
        context: ssl.SSLContext | None = None
        if settings.self_signed:
            from .tls import self_signed

            made = stack.enter_context(self_signed(settings.host))
            print(f"self-signed certificate for {', '.join(made.names)}", flush=True)
            print(f"SHA-256 fingerprint {made.fingerprint}", flush=True)
            settings = replace(settings, tls_cert=made.cert, tls_key=made.key)
        if settings.tls_cert and settings.tls_key:
            from .tls import server_context

            context = server_context(settings.tls_cert, settings.tls_key)
        await _serve(settings, context)


async def _serve(settings: Settings, context: ssl.SSLContext | None) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_SECONDS, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
    await site.start()
    host, port = _bound_address(site, settings)
    scheme = "https" if context is not None else "http"
    print(f"listening on {scheme}://{host}:{port}", flush=True)
    log.info("serving on %s://%s:%s (%s)", scheme, host, port,
             "redis" if settings.redis_url else "memory")
    reason = await app[BACKEND_KEY].unavailable_reason()
    if reason is not None:  # said at start, not only by /healthz
        log.warning("--redis-url: %s; serving anyway, requests answer 'unavailable' and "
                    "/healthz 503 until Redis is back", reason)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()


def _bound_address(site: web.TCPSite, settings: Settings) -> tuple[str, int]:
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        address = sockets[0].getsockname()
        host = settings.host if settings.host not in ("", "0.0.0.0", "::") else address[0]
        return host, int(address[1])
    return settings.host, settings.port


def run(settings: Settings) -> int:
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]
    try:
        if uvloop is not None:
            uvloop.run(serve(settings))
        else:
            asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"signaling-server: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)
        return 1
    return 0
