"""Command line: ``python -m signaling`` / ``signaling-server``.

Every flag may also come from the environment as ``SIGNALING_`` plus the
flag's name in capitals with ``_`` for ``-`` (``--max-relay-bytes`` is
``SIGNALING_MAX_RELAY_BYTES``); a flag on the command line wins, and a
repeatable flag takes a comma-separated list there. A bad value exits 2 with
a message naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .settings import Settings

N = TypeVar("N", int, float)
ENV_PREFIX = "SIGNALING_"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class Flag:
    name: str
    parse: Callable[[str], Any]
    help: str
    repeatable: bool = False

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


_BINARY_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def plain_number(value: float) -> str:
    """``100,000`` or ``0.05``: never ``1e+05``."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0")


def byte_size(value: float) -> str:
    """``512 MiB``, ``1 KiB`` or ``1,000 bytes``: a whole binary unit when there is one."""
    for unit, size in _BINARY_UNITS:
        if value >= size and value % size == 0:
            return f"{int(value) // size:,} {unit}"
    return f"{plain_number(value)} bytes" if value != 1 else "1 byte"


def _number(
    convert: Callable[[str], N], low: N, high: N, what: str,
    show: Callable[[float], str] = plain_number, unit: str = "",
) -> Callable[[str], N]:
    """A parser for a number in ``[low, high]`` (NaN and infinities fail the range)."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise ValueError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            raise ValueError(f"expected {show(low)} to {show(high)}{unit}, got {text}")
        return value

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    return _number(int, low, high, "a whole number")


def _bytes(low: int, high: int) -> Callable[[str], int]:
    return _number(int, low, high, "a whole number of bytes", byte_size)


def _seconds(low: float, high: float) -> Callable[[str], float]:
    return _number(float, low, high, "a number of seconds", unit=" seconds")


_rate = _number(float, 0.0, 1_000_000.0, "a number of requests per second", unit=" requests/s")


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        scheme = text.split(":", 1)[0].lower() if ":" in text else ""
        if scheme not in schemes:
            raise ValueError(f"expected a {'/'.join(schemes)} URL, got {text!r}")
        return text

    return parse


def _origin(text: str) -> str:
    if text == "*":
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"expected an origin like https://app.example, got {text!r}")
    return text.rstrip("/")


def _text(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.lower()


FLAGS: tuple[Flag, ...] = (
    Flag("host", _text, "address to listen on (default 127.0.0.1)"),
    Flag("port", _int_range(0, 65535), "port to listen on; 0 picks a free one (default 8080)"),
    Flag("redis-url", _url("redis", "rediss", "unix"), "share state across nodes via Redis"),
    Flag("auth-secret", _text, "require HS256 JWTs signed with this secret"),
    Flag("allowed-origins", _origin, "browser origins allowed besides same-origin, or *",
         repeatable=True),
    Flag("max-peers-per-room", _int_range(1, 100_000), "room capacity (default 16)"),
    Flag("max-relay-bytes", _bytes(1, 512 * 1024 * 1024), "relay size limit (default 1 MiB)"),
    Flag("rate-limit", _rate, "requests per second per connection, 0 = off (default 100)"),
    Flag("rate-limit-bytes", _bytes(0, 64 * 1024 * 1024 * 1024),
         "signal/relay payload bytes per second per connection, each charged once per "
         "receiver; 0 = off (default 33554432, 32 MiB)"),
    Flag("max-rooms-per-connection", _int_range(1, 10_000),
         "rooms one connection may be in at once (default 32)"),
    Flag("resume-grace", _seconds(0, 86400), "seconds a lost peer is kept (default 15)"),
    Flag("ping-interval", _seconds(0.05, 3600), "Engine.IO ping interval (default 25)"),
    Flag("ping-timeout", _seconds(0.05, 3600), "Engine.IO ping timeout (default 20)"),
    Flag("stun", _url("stun", "stuns"), "STUN server URL for iceServers", repeatable=True),
    Flag("turn-url", _url("turn", "turns"), "TURN server URL for iceServers", repeatable=True),
    Flag("turn-secret", _text, "TURN REST API shared secret (coturn use-auth-secret)"),
    Flag("turn-ttl", _int_range(60, 30 * 86400), "TURN credential lifetime (default 86400)"),
    Flag("log-level", _log_level, "debug, info, warning or error (default info)"),
)


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "signaling-server") -> ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description="WebRTC signaling server (Socket.IO). "
        "Run `python -m signaling token --help` to mint auth tokens.",
    )
    for flag in FLAGS:
        parser.add_argument(
            f"--{flag.name}",
            dest=flag.dest,
            action="append" if flag.repeatable else "store",
            default=None,
            metavar=flag.dest.upper(),
            help=f"{flag.help} [env {flag.env}]",
        )
    parser.add_argument(
        "--websocket-compression", action="store_true",
        help="offer per-message deflate on websockets (costs ~90 KB per connection)",
    )
    return parser


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``argv`` and ``environ``; exits 2 naming a bad flag."""
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(list(argv))
    values: dict[str, Any] = {}
    for flag in FLAGS:
        given = getattr(args, flag.dest)
        source = f"--{flag.name}"
        if given is None and flag.env in environ:
            raw = environ[flag.env]
            given = [p.strip() for p in raw.split(",") if p.strip()] if flag.repeatable else raw
            source = f"{flag.env} (--{flag.name})"
        if given is None:
            continue
        try:
            if flag.repeatable:
                # protocol.md: --allowed-origins "https://a.example,https://b.example"
                items = [p.strip() for item in given for p in item.split(",") if p.strip()]
                values[flag.dest] = tuple(flag.parse(item) for item in items)
            else:
                values[flag.dest] = flag.parse(given)
        except ValueError as exc:
            parser.error(f"argument {source}: {exc}")
    if values.get("turn_url") and not values.get("turn_secret"):
        parser.error("argument --turn-url: needs --turn-secret to mint TURN credentials")
    if args.websocket_compression or environ.get(ENV_PREFIX + "WEBSOCKET_COMPRESSION") == "1":
        values["websocket_compression"] = True
    return Settings(**values)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["token"]:
        from .tokens import main as token_main

        return token_main(argv[1:])
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    from .app import run

    return run(settings)
