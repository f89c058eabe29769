"""``python -m signaling token``: print a connection token for ``--auth-secret``.

    python -m signaling token --secret S [--room R ...] [--ttl 3600]

The secret may come from ``SIGNALING_AUTH_SECRET`` instead (the flag wins).
Without ``--room`` the token may join any room. A bad value exits 2 with a
message naming the flag; a secret shorter than 32 bytes is accepted with a
warning on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from signaling.auth import MIN_SECRET_BYTES, mint_token
from signaling.protocol import ROOM_PATTERN

SECRET_ENV = "SIGNALING_AUTH_SECRET"
DEFAULT_TTL = 3600


def _room(value: str) -> str:
    if not ROOM_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a room name (1-64 characters of A-Z a-z 0-9 _ . -)"
        )
    return value


def _ttl(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number of seconds")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m signaling token",
        description="Print a JWT (HS256) that lets a client connect to a server "
        "started with --auth-secret.",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get(SECRET_ENV),
        help=f"the server's --auth-secret (default: ${SECRET_ENV})",
    )
    parser.add_argument(
        "--room",
        action="append",
        type=_room,
        dest="rooms",
        metavar="ROOM",
        help="a room the token may join (repeatable; default: any room)",
    )
    parser.add_argument(
        "--ttl",
        type=_ttl,
        default=DEFAULT_TTL,
        help=f"lifetime in seconds (default: {DEFAULT_TTL})",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the command with ``argv`` (the arguments after ``token``); the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if not args.secret:
            parser.error(f"argument --secret: required (or set {SECRET_ENV})")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    secret: str = args.secret
    if len(secret.encode()) < MIN_SECRET_BYTES:
        print(
            f"warning: --secret is shorter than {MIN_SECRET_BYTES} bytes; "
            "a short HS256 secret can be guessed from any token",
            file=sys.stderr,
        )
    print(mint_token(secret, ttl_seconds=args.ttl, rooms=args.rooms, now=time.time()))
    return 0
