"""``python -m signaling token``: prints a token the server accepts; bad values exit 2."""

from __future__ import annotations

import time

import pytest

from signaling.auth import verify_token
from signaling.errors import Unauthorized
from signaling.tokens import SECRET_ENV, main

SECRET = "a-test-secret-that-is-32-bytes-long!"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)


def test_prints_a_token_for_the_rooms_and_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time()
    status, out, err = run(
        ["--secret", SECRET, "--room", "a", "--room", "b.c", "--ttl", "120"], capsys
    )
    assert (status, err) == (0, "")
    assert out.endswith("\n") and out.count("\n") == 1
    claims = verify_token(out.strip(), SECRET, now=time.time())
    assert claims.rooms == frozenset({"a", "b.c"})
    assert int(before) + 120 <= claims.expires_at <= time.time() + 120
    with pytest.raises(Unauthorized):
        verify_token(out.strip(), SECRET, now=time.time() + 121)


def test_defaults_any_room_one_hour(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--secret", SECRET], capsys)
    assert status == 0
    claims = verify_token(out.strip(), SECRET, now=time.time())
    assert claims.rooms is None
    assert abs(claims.expires_at - (time.time() + 3600)) < 5


def test_secret_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    status, out, _ = run(["--room", "r"], capsys)
    assert status == 0
    assert verify_token(out.strip(), SECRET, now=time.time()).allows("r")


def test_flag_wins_over_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "the-environment-secret-32-bytes!!")
    status, out, _ = run(["--secret", SECRET], capsys)
    assert status == 0
    verify_token(out.strip(), SECRET, now=time.time())


def test_short_secret_warns_but_works(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["--secret", "short"], capsys)
    assert status == 0
    assert "warning" in err and "--secret" in err
    verify_token(out.strip(), "short", now=time.time())


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        ([], "--secret"),
        (["--secret", ""], "--secret"),
        (["--secret", SECRET, "--ttl", "0"], "--ttl"),
        (["--secret", SECRET, "--ttl", "-5"], "--ttl"),
        (["--secret", SECRET, "--ttl", "1.5"], "--ttl"),
        (["--secret", SECRET, "--ttl", "soon"], "--ttl"),
        (["--secret", SECRET, "--room", ""], "--room"),
        (["--secret", SECRET, "--room", "has space"], "--room"),
        (["--secret", SECRET, "--room", "x" * 65], "--room"),
        (["--secret", SECRET, "--room", "é"], "--room"),
        (["--secret", SECRET, "--bogus"], "--bogus"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(argv, capsys)
    assert status == 2
    assert out == ""
    assert flag in err


def test_longest_room_name_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    room = "A-z_0.9" * 9 + "x"
    assert len(room) == 64
    status, out, _ = run(["--secret", SECRET, "--room", room], capsys)
    assert status == 0
    assert verify_token(out.strip(), SECRET, now=time.time()).allows(room)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--help"], capsys)
    assert status == 0
    assert "--secret" in out and "--room" in out and "--ttl" in out
