"""Connection tokens: HS256 JWTs checked against ``--auth-secret``.

A client connects with ``auth: {token: T}``. :func:`verify_token` turns T into
:class:`TokenClaims` or raises :class:`~signaling.errors.Unauthorized` with a
message that says what was wrong; the adapter refuses the connection with
``{code: "unauthorized", message}``. At ``join`` the service asks
:meth:`TokenClaims.allows` whether the room is listed in the token's ``rooms``
claim (absent means any room).

The clock is injected: callers pass ``now`` (Unix seconds). PyJWT only checks
the signature, the algorithm (HS256 and nothing else, ``none`` included) and
that ``exp`` is present; ``exp`` and ``nbf`` are compared with ``now`` here,
because PyJWT reads the wall clock itself.

PyJWT warns on every call when the secret is shorter than
:data:`MIN_SECRET_BYTES`; that warning is silenced here (it would fire once per
connection) and the command line is the place to warn once about it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jwt

from signaling.errors import Unauthorized

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key should be at least 32 bytes."""
MAX_TOKEN_CHARS = 8192
"""Longer tokens are refused before any decoding."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token grants: ``rooms`` (None: any room) until ``expires_at``."""

    rooms: frozenset[str] | None
    expires_at: float

    def allows(self, room: str) -> bool:
        """Whether this token may join ``room``."""
        return self.rooms is None or room in self.rooms


def verify_token(token: object, secret: str, *, now: float) -> TokenClaims:
    """Check ``token`` (as the client sent it) and return its claims.

    Raises :class:`Unauthorized` when the token is missing or not a string,
    too long, malformed, signed with another algorithm or key, has no ``exp``
    or a non-numeric one, is expired (``exp <= now``) or not yet valid
    (``nbf > now``), or has a ``rooms`` claim that is not a list of strings.
    """
    _check_secret(secret)
    if token is None:
        raise Unauthorized("missing token: connect with auth {token: <JWT>}")
    if not isinstance(token, str):
        raise Unauthorized("token must be a string")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized(f"token is longer than {MAX_TOKEN_CHARS} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            payload = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                options={
                    "require": ["exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
                leeway=0,
            )
    except jwt.InvalidAlgorithmError:
        raise Unauthorized(f"token must be signed with {ALGORITHM}") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("token signature does not match") from None
    except jwt.MissingRequiredClaimError:
        raise Unauthorized("token has no exp claim") from None
    except jwt.DecodeError as exc:
        raise Unauthorized(f"malformed token: {exc}") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    expires_at = _numeric_date(payload, "exp")
    if expires_at <= now:
        raise Unauthorized("token has expired")
    if "nbf" in payload and _numeric_date(payload, "nbf") > now:
        raise Unauthorized("token is not valid yet (nbf)")
    return TokenClaims(rooms=_rooms_claim(payload), expires_at=expires_at)


def mint_token(
    secret: str,
    *,
    ttl_seconds: float,
    rooms: Iterable[str] | None = None,
    now: float,
) -> str:
    """Sign a token valid for ``ttl_seconds`` from ``now``, for ``rooms`` (None: any room).

    ``exp`` is written as whole seconds (rounded down), ``iat`` too.
    """
    _check_secret(secret)
    if not (ttl_seconds > 0 and math.isfinite(ttl_seconds)):
        raise ValueError("ttl_seconds must be a positive number")
    payload: dict[str, object] = {"iat": int(now), "exp": int(now + ttl_seconds)}
    if rooms is not None:
        payload["rooms"] = list(dict.fromkeys(rooms))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _check_secret(secret: str) -> None:
    if not secret:
        raise ValueError("the auth secret must not be empty")


def _numeric_date(payload: Mapping[str, object], claim: str) -> float:
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized(f"token {claim} claim must be a number of seconds")
    try:
        seconds = float(value)
    except OverflowError:
        raise Unauthorized(f"token {claim} claim is out of range") from None
    if not math.isfinite(seconds):
        raise Unauthorized(f"token {claim} claim is out of range")
    return seconds


def _rooms_claim(payload: Mapping[str, object]) -> frozenset[str] | None:
    if "rooms" not in payload:
        return None
    rooms = payload["rooms"]
    if not isinstance(rooms, list) or not all(isinstance(room, str) for room in rooms):
        raise Unauthorized("token rooms claim must be a list of room names")
    return frozenset(rooms)
