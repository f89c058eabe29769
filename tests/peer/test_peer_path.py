"""Peer.path: the transport, the selected pair's candidate type and the round-trip time."""

from __future__ import annotations

import asyncio

import pytest

from peer import Peer
from peer.path_stats import pair_candidate, webrtc_path
from tests.helpers.server import RunningServer

WAIT = 15.0


@pytest.mark.parametrize(
    ("local", "remote", "expected"),
    [
        ("host", "host", "host"),
        ("host", "prflx", "host"),
        ("srflx", "host", "srflx"),
        ("prflx", "srflx", "prflx"),
        ("host", "relay", "relay"),
        ("relay", "host", "relay"),
        (None, "host", None),
        ("bogus", "host", None),
    ],
)
def test_candidate_of_a_pair(local: str | None, remote: str | None, expected: str | None) -> None:
    assert pair_candidate(local, remote) == expected


def test_an_unknown_connection_reads_as_unknown() -> None:
    assert webrtc_path(None) == (None, None)
    assert webrtc_path(object()) == (None, None)


@pytest.mark.parametrize("engine", ["aiortc", "native"])
async def test_path_on_loopback_is_host_with_a_round_trip_time(
    server: RunningServer, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiortc reports its SCTP round-trip time; libdatachannel's C API has none (None)."""
    monkeypatch.setenv("RTC_PEER_ENGINE", engine)
    a = Peer(server.url, "path")
    b = Peer(server.url, "path")
    upgraded = asyncio.Event()
    a.on("upgrade", lambda *_: upgraded.set())
    await a.connect()
    await b.connect()
    try:
        await asyncio.wait_for(upgraded.wait(), WAIT)
        b.handle("ping", lambda _s, data: data)
        assert await a.request(b.id, "ping", 1) == 1  # SCTP data both ways: an RTT sample
        path = a.path(b.id)
        assert path["transport"] == "webrtc"
        assert path["candidate"] == "host"
        if engine == "aiortc":
            assert isinstance(path["rtt_ms"], float) and 0 <= path["rtt_ms"] < 5000
        else:
            assert path["rtt_ms"] is None
    finally:
        await b.close()
        await a.close()


async def test_path_through_the_server(server: RunningServer) -> None:
    async with Peer(server.url, "path-relay", webrtc=False) as a, Peer(
        server.url, "path-relay"
    ) as b:
        assert a.path(b.id) == {"transport": "relay", "candidate": None, "rtt_ms": None}
        assert b.path(a.id) == {"transport": "relay", "candidate": None, "rtt_ms": None}
