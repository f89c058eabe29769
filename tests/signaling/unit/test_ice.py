"""iceServers: STUN entries and TURN REST credentials that coturn's use-auth-secret accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling.ice import ice_servers

NOW = 1_800_000_000.7
PEER = "Zk3_q9-aB1cD2eF3gH4i"


def test_nothing_configured_gives_empty_list() -> None:
    assert (
        ice_servers(stun=[], turn_urls=[], turn_secret=None, turn_ttl=86400, peer_id=PEER, now=NOW)
        == []
    )


def test_stun_only_has_no_credentials() -> None:
    servers = ice_servers(
        stun=["stun:a.example:3478", "stun:b.example:3478"],
        turn_urls=[],
        turn_secret="ignored-without-turn-urls",
        turn_ttl=86400,
        peer_id=PEER,
        now=NOW,
    )
    assert servers == [{"urls": ["stun:a.example:3478", "stun:b.example:3478"]}]


def test_turn_entry_follows_the_turn_rest_convention() -> None:
    servers = ice_servers(
        stun=["stun:s.example"],
        turn_urls=["turn:t.example:3478?transport=udp", "turns:t.example:5349"],
        turn_secret="coturn-static-auth-secret",
        turn_ttl=600,
        peer_id=PEER,
        now=NOW,
    )
    assert servers[0] == {"urls": ["stun:s.example"]}
    turn = servers[1]
    assert len(servers) == 2
    assert set(turn) == {"urls", "username", "credential"}
    assert turn["urls"] == ["turn:t.example:3478?transport=udp", "turns:t.example:5349"]
    expiry, _, peer = str(turn["username"]).partition(":")
    assert int(expiry) == int(NOW) + 600
    assert peer == PEER
    # coturn: base64(HMAC-SHA1(static-auth-secret, username))
    mac = hmac.new(b"coturn-static-auth-secret", str(turn["username"]).encode(), hashlib.sha1)
    assert turn["credential"] == base64.b64encode(mac.digest()).decode()


@pytest.mark.parametrize(("ttl", "now"), [(1, 0.0), (86400, 1_700_000_000.0), (3600, 99.99)])
def test_expiry_is_now_plus_ttl(ttl: int, now: float) -> None:
    (turn,) = ice_servers(
        stun=[], turn_urls=["turn:t"], turn_secret="s", turn_ttl=ttl, peer_id="p", now=now
    )
    assert turn["username"] == f"{int(now) + ttl}:p"


def test_credential_differs_per_peer_and_per_secret() -> None:
    def credential(secret: str, peer: str) -> object:
        (turn,) = ice_servers(
            stun=[], turn_urls=["turn:t"], turn_secret=secret, turn_ttl=60, peer_id=peer, now=NOW
        )
        return turn["credential"]

    assert credential("s1", "p1") != credential("s1", "p2")
    assert credential("s1", "p1") != credential("s2", "p1")


def test_result_lists_are_copies() -> None:
    stun = ["stun:s"]
    servers = ice_servers(
        stun=stun, turn_urls=[], turn_secret=None, turn_ttl=60, peer_id=PEER, now=NOW
    )
    stun.append("stun:later")
    assert servers == [{"urls": ["stun:s"]}]


@pytest.mark.parametrize("secret", [None, ""])
def test_turn_urls_without_secret_is_a_configuration_error(secret: str | None) -> None:
    with pytest.raises(ValueError, match="secret"):
        ice_servers(
            stun=[], turn_urls=["turn:t"], turn_secret=secret, turn_ttl=60, peer_id=PEER, now=NOW
        )


@pytest.mark.parametrize("ttl", [0, -5])
def test_turn_ttl_must_be_positive(ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl"):
        ice_servers(
            stun=[], turn_urls=["turn:t"], turn_secret="s", turn_ttl=ttl, peer_id=PEER, now=NOW
        )
