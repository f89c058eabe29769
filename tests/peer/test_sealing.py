"""peer/sealing.py against the golden vectors web/test/ also checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peer.sealing import KDF_ITERATIONS, Sealer, SealError, associated_data, derive_key

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "peer-sealed.json").read_text("utf-8")
)


@pytest.fixture(scope="module")
def sealer() -> Sealer:
    key = derive_key(VECTORS["secret"], VECTORS["room"])
    assert key.hex() == VECTORS["key"]
    return Sealer(key, VECTORS["room"])


def test_kdf_parameters() -> None:
    assert KDF_ITERATIONS == VECTORS["iterations"] >= 600_000


@pytest.mark.parametrize("vector", VECTORS["sealed"], ids=lambda v: v["name"])
def test_golden_sealed_messages(sealer: Sealer, vector: dict[str, Any]) -> None:
    plaintext = bytes.fromhex(vector["plaintext"])
    args = (vector["kind"], vector["from"], vector["to"])
    aad = associated_data(vector["kind"], VECTORS["room"], vector["from"], vector["to"])
    assert aad.hex() == vector["aad"]
    sealed = sealer.seal(plaintext, *args, nonce=bytes.fromhex(vector["nonce"]))
    assert sealed.hex() == vector["sealed"]
    assert sealer.open(sealed, *args) == plaintext


def test_nothing_opens_elsewhere(sealer: Sealer) -> None:
    sealed = sealer.seal(b"frames", "relay", "alice", "bob")
    assert sealer.open(sealed, "relay", "alice", "bob") == b"frames"
    for args in [("relay", "carol", "bob"), ("relay", "alice", "carol"), ("signal", "alice", "bob")]:
        with pytest.raises(SealError):
            sealer.open(sealed, *args)  # type: ignore[arg-type]
    other_room = Sealer(derive_key(VECTORS["secret"], "another-room"), "another-room")
    with pytest.raises(SealError):
        other_room.open(sealed, "relay", "alice", "bob")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    for bad in [bytes(tampered), sealed[:20], b"", b"\x02" + sealed[1:]]:
        with pytest.raises(SealError):
            sealer.open(bad, "relay", "alice", "bob")


def test_signals_round_trip_and_refuse_the_clear(sealer: Sealer) -> None:
    data = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
    sealed = sealer.seal_signal(data, "alice", "bob")
    assert list(sealed) == ["sealed"] and "sdp" not in json.dumps(sealed)
    assert sealer.open_signal(sealed, "alice", "bob") == data
    for bad in [data, {"sealed": "!!"}, {"sealed": sealed["sealed"], "x": 1}, {"sealed": 5}]:
        with pytest.raises(SealError):
            sealer.open_signal(bad, "alice", "bob")
