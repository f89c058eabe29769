"""Connection tokens: what verify_token accepts and refuses, with tokens forged by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from signaling.auth import MAX_TOKEN_CHARS, TokenClaims, mint_token, verify_token
from signaling.errors import Unauthorized

SECRET = "a-test-secret-that-is-32-bytes-long!"
NOW = 1_800_000_000.0


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def forge(
    payload: object,
    *,
    header: object = None,
    secret: str = SECRET,
    digest: str = "sha256",
    signature: str | None = None,
) -> str:
    """A JWT built without PyJWT: any header, any payload, HMAC with any hash."""
    head = {"alg": "HS256", "typ": "JWT"} if header is None else header
    signing_input = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(payload).encode())
    if signature is None:
        mac = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
        signature = b64url(mac)
    return signing_input + "." + signature


def refused(token: object, *, now: float = NOW) -> str:
    with pytest.raises(Unauthorized) as info:
        verify_token(token, SECRET, now=now)
    assert info.value.code == "unauthorized"
    return info.value.message


def test_valid_hand_made_token_gives_claims() -> None:
    claims = verify_token(forge({"exp": NOW + 60, "rooms": ["a", "b"]}), SECRET, now=NOW)
    assert claims == TokenClaims(rooms=frozenset({"a", "b"}), expires_at=NOW + 60)


def test_no_rooms_claim_allows_every_room() -> None:
    claims = verify_token(forge({"exp": NOW + 60}), SECRET, now=NOW)
    assert claims.rooms is None
    assert claims.allows("anything")


@pytest.mark.parametrize(
    ("rooms", "room", "allowed"),
    [
        (["a", "b"], "a", True),
        (["a", "b"], "c", False),
        ([], "a", False),
        (["A"], "a", False),
    ],
)
def test_rooms_claim_lists_the_rooms_allowed(rooms: list[str], room: str, allowed: bool) -> None:
    claims = verify_token(forge({"exp": NOW + 60, "rooms": rooms}), SECRET, now=NOW)
    assert claims.allows(room) is allowed


@pytest.mark.parametrize("token", [None, 42, b"bytes", ["a"], {"token": "x"}])
def test_missing_or_non_string_token(token: object) -> None:
    message = refused(token)
    assert "missing" in message or "string" in message


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c",
        "...",
        b64url(b"[" * 2500 + b"]" * 2500) + "." + b64url(b'{"exp": 1}') + ".sig",
        b64url(b'{"alg": "HS256", "x": ' + b"9" * 5000 + b"}") + "." + b64url(b"{}") + ".sig",
    ],
    ids=["empty", "one-part", "two-parts", "garbage", "dots", "deep-header", "huge-int-header"],
)
def test_malformed_token(token: str) -> None:
    assert "malformed" in refused(token)


def test_overlong_token_refused_before_decoding() -> None:
    token = forge({"exp": NOW + 60, "pad": "x" * MAX_TOKEN_CHARS})
    assert "longer" in refused(token)


def test_wrong_secret() -> None:
    assert "signature" in refused(
        forge({"exp": NOW + 60}, secret="another-secret-32-bytes-long!!!!")
    )


def test_tampered_payload_keeps_old_signature() -> None:
    good = forge({"exp": NOW + 60, "rooms": ["a"]})
    head, _, sig = good.split(".")
    tampered = (
        head + "." + b64url(json.dumps({"exp": NOW + 60, "rooms": ["b"]}).encode()) + "." + sig
    )
    assert "signature" in refused(tampered)


def test_alg_none_unsigned_is_refused() -> None:
    token = forge({"exp": NOW + 60}, header={"alg": "none", "typ": "JWT"}, signature="")
    assert "HS256" in refused(token)


@pytest.mark.parametrize(("alg", "digest"), [("HS384", "sha384"), ("HS512", "sha512")])
def test_other_hmac_algorithms_are_refused_even_when_correctly_signed(
    alg: str, digest: str
) -> None:
    token = forge({"exp": NOW + 60}, header={"alg": alg, "typ": "JWT"}, digest=digest)
    assert "HS256" in refused(token)


def test_rs256_header_is_refused() -> None:
    # Signed with HMAC over the secret, as in the RS256/HS256 key-confusion attack.
    token = forge({"exp": NOW + 60}, header={"alg": "RS256", "typ": "JWT"})
    assert "HS256" in refused(token)


def test_header_without_alg_is_refused() -> None:
    assert refused(forge({"exp": NOW + 60}, header={"typ": "JWT"}))


@pytest.mark.parametrize("payload", [{}, {"exp": None}, {"rooms": ["a"]}])
def test_token_without_exp(payload: dict[str, object]) -> None:
    assert "exp" in refused(forge(payload))


@pytest.mark.parametrize("exp", ["1900000000", True, [1], {"t": 1}, 10**400])
def test_exp_must_be_a_finite_number(exp: object) -> None:
    assert "exp" in refused(forge({"exp": exp}))


@pytest.mark.parametrize(
    ("exp", "valid"),
    [(NOW + 1, True), (NOW + 0.001, True), (NOW, False), (NOW - 1, False)],
)
def test_expiry_uses_the_injected_clock_with_no_leeway(exp: float, valid: bool) -> None:
    token = forge({"exp": exp})
    if valid:
        assert verify_token(token, SECRET, now=NOW).expires_at == exp
    else:
        assert "expired" in refused(token)


def test_same_token_expires_later_on_the_clock() -> None:
    token = forge({"exp": NOW + 10})
    verify_token(token, SECRET, now=NOW + 9.9)
    assert "expired" in refused(token, now=NOW + 10)


def test_not_before_in_the_future_is_refused() -> None:
    token = forge({"exp": NOW + 60, "nbf": NOW + 5})
    assert "nbf" in refused(token)
    assert verify_token(token, SECRET, now=NOW + 5).expires_at == NOW + 60


@pytest.mark.parametrize("rooms", ["room", None, [1], ["a", None], {"a": 1}])
def test_rooms_claim_must_be_a_list_of_strings(rooms: object) -> None:
    assert "rooms" in refused(forge({"exp": NOW + 60, "rooms": rooms}))


def test_short_secret_works_without_warning() -> None:
    # pytest runs with filterwarnings=error: PyJWT's key-length warning would fail this.
    token = mint_token("short", ttl_seconds=60, now=NOW)
    assert verify_token(token, "short", now=NOW).rooms is None


def test_mint_round_trip() -> None:
    token = mint_token(SECRET, ttl_seconds=3600, rooms=["x", "y", "x"], now=NOW)
    claims = verify_token(token, SECRET, now=NOW + 3599)
    assert claims == TokenClaims(rooms=frozenset({"x", "y"}), expires_at=NOW + 3600)
    assert "expired" in refused(token, now=NOW + 3600)


def test_minted_token_is_plain_hs256_jwt() -> None:
    token = mint_token(SECRET, ttl_seconds=10.9, rooms=["r"], now=NOW + 0.5)
    head, body, sig = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {
        "iat": int(NOW),
        "exp": int(NOW + 11.4),
        "rooms": ["r"],
    }
    expected = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert sig == b64url(expected)


def test_minted_without_rooms_has_no_rooms_claim() -> None:
    body = mint_token(SECRET, ttl_seconds=60, now=NOW).split(".")[1]
    assert "rooms" not in json.loads(base64.urlsafe_b64decode(body + "=="))


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
def test_mint_refuses_bad_ttl(ttl: float) -> None:
    with pytest.raises(ValueError):
        mint_token(SECRET, ttl_seconds=ttl, now=NOW)


def test_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        mint_token("", ttl_seconds=60, now=NOW)
    with pytest.raises(ValueError):
        verify_token(forge({"exp": NOW + 60}), "", now=NOW)
