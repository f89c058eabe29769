"""Which browser origins may open a session: the contract's ``--allowed-origins``.

Same origin is always allowed; ``--allowed-origins`` adds a list, or ``*``
allows any. A request without an Origin header (a non-browser client) is not
checked here (python-engineio only checks requests that carry one).

python-engineio takes a list *instead of* same origin; only a callable can
say "same origin and these", so :class:`OriginPolicy` is one. It answers for
polling and websocket alike, before any session exists, so a refused origin
gets a 400 and no session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the default port left out; None if not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        return None
    if parts.username is not None or parts.query or parts.fragment:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


_COUNTED = "signaling.origin_refusal_counted"


class OriginPolicy:
    """``policy(origin, environ)`` -> whether a request from ``origin`` may proceed."""

    def __init__(self, allowed: Iterable[str] | None, on_refused: Callable[[], None] | None = None) -> None:
        self.on_refused = on_refused  # counts refusals for /metrics
        allowed = tuple(allowed or ())
        self.any = "*" in allowed
        self.allowed = frozenset(n for n in (normalize(o) for o in allowed if o != "*") if n)

    def __call__(self, origin: str | None, environ: Mapping[str, Any] | None = None) -> bool:
        if not origin:
            return True
        if self.any:
            return True
        wanted = normalize(origin)
        # None: "null" (sandboxed pages, file://) and anything malformed
        ok = wanted is not None and (wanted in self.allowed or wanted in same_origins(environ or {}))
        if not ok and self.on_refused is not None and isinstance(environ, dict) and _COUNTED not in environ:
            environ[_COUNTED] = True  # python-engineio asks twice per request: count it once
            self.on_refused()
        return ok


def same_origins(environ: Mapping[str, Any]) -> set[str]:
    """The origin(s) this request was addressed to: its Host, or a proxy's forwarded one."""
    request = environ.get("aiohttp.request")
    scheme = getattr(request, "scheme", None) or environ.get("wsgi.url_scheme", "http")
    found: set[str] = set()
    host = environ.get("HTTP_HOST")
    if host:
        origin = normalize(f"{scheme}://{host.split(',')[0].strip()}")
        if origin:
            found.add(origin)
    fwd_host = environ.get("HTTP_X_FORWARDED_HOST")
    fwd_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    if fwd_host or fwd_proto:
        proto = (fwd_proto or scheme).split(",")[0].strip()
        name = (fwd_host or host or "").split(",")[0].strip()
        origin = normalize(f"{proto}://{name}")
        if origin:
            found.add(origin)
    return found
