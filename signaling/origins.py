"""Which browser origins may open a session (``--allowed-origins``), and which
``Host`` names a loopback server answers (``--allowed-hosts``).

Same origin is always allowed; ``--allowed-origins`` adds a list, or ``*``
allows any. A request without an Origin header (a non-browser client) is not
checked here: browsers always send one.

:class:`OriginPolicy` answers for polling and websocket alike, before any
session exists (``transport.EngineServer.handle``), so a refused origin gets
a 400 and no session.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
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


class OriginPolicy:
    """``policy(origin, scheme, headers)`` -> whether a request from ``origin`` may proceed
    (``scheme`` and ``headers`` are the request's own, for the same-origin rule)."""

    def __init__(
        self, allowed: Iterable[str] | None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        allowed = tuple(allowed or ())
        self.any = "*" in allowed
        self.allowed = frozenset(n for n in (normalize(o) for o in allowed if o != "*") if n)
        self.on_refused = on_refused  # (reason, detail): counted and logged by the caller

    def __call__(
        self, origin: str | None, scheme: str = "http", headers: Mapping[str, str] | None = None
    ) -> bool:
        if not origin or self.any:
            return True
        wanted = normalize(origin)
        # None: "null" (sandboxed pages, file://) and anything malformed
        ok = wanted is not None and (
            wanted in self.allowed or wanted in same_origins(scheme, headers or {}))
        if not ok and self.on_refused is not None:
            self.on_refused("origin", f"Origin {shown(origin)} is not allowed (--allowed-origins)")
        return ok


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a log line, cut short: it comes from anyone."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 3] + "..."


def same_origins(scheme: str, headers: Mapping[str, str]) -> set[str]:
    """The origin(s) this request was addressed to: its Host, or a proxy's forwarded one."""
    found: set[str] = set()
    host = headers.get("Host")
    if host:
        origin = normalize(f"{scheme}://{host.split(',')[0].strip()}")
        if origin:
            found.add(origin)
    fwd_host = headers.get("X-Forwarded-Host")
    fwd_proto = headers.get("X-Forwarded-Proto")
    if fwd_host or fwd_proto:
        proto = (fwd_proto or scheme).split(",")[0].strip()
        name = (fwd_host or host or "").split(",")[0].strip()
        origin = normalize(f"{proto}://{name}")
        if origin:
            found.add(origin)
    return found


# -- Host names: DNS rebinding ---------------------------------------------
LOOPBACK_NAMES = ("localhost",)


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lower case, without port or brackets; None if malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        return header[1:end] or None
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return name.rstrip(".") or None


def is_loopback(name: str) -> bool:
    """``localhost``, a name under ``.localhost``, 127.0.0.0/8 or ::1."""
    name = name.lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """``policy(host_header)`` -> whether to answer a request addressed to that name.

    DNS rebinding: a page on ``evil.example`` whose name is made to resolve to
    127.0.0.1 talks to a server on loopback as its own origin (same origin
    passes, since Origin and Host both say ``evil.example``). A server that
    listens on a loopback address is only meant for this machine, so it
    answers only ``Host`` names that are loopback themselves, plus those in
    ``--allowed-hosts`` (the public name a local reverse proxy passes on);
    ``*`` turns the check off. A server listening on any other address does
    not check (it is meant to be reached by names it cannot know).
    A request without a Host header (not a browser) is answered.
    """

    def __init__(self, listen_host: str, allowed: Iterable[str] | None) -> None:
        allowed = tuple(a.lower().rstrip(".") for a in (allowed or ()))
        self.active = is_loopback(listen_host) and "*" not in allowed
        self.allowed = frozenset(allowed)

    def __call__(self, header: str | None) -> bool:
        if not self.active or header is None:
            return True
        name = host_name(header)
        return name is not None and (is_loopback(name) or name in self.allowed)
