"""Resume end to end: a client killed without a goodbye (SIGKILL of a subprocess
client) keeps its peer for the grace time; it comes back on a new connection with its
resumeToken, gets its peerId back and every kept message in order before anything
newer; the token works once; expiry gives ``peer-left`` ``disconnected``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers.clients import RecordingClient
from tests.helpers.server import ROOT, RunningServer, running_server

CHILD = r"""
import asyncio, json, os, sys
import socketio

async def main(url, rooms, transport):
    sio = socketio.AsyncClient(reconnection=False)
    token = os.environ.get("CHILD_TOKEN")
    await sio.connect(url, transports=[transport], wait_timeout=10,
                      auth={"token": token} if token else None)
    acks = [await sio.call("join", {"room": room}, timeout=10) for room in rooms]
    if os.environ.get("CHILD_UPDATE"):
        assert (await sio.call("update", json.loads(os.environ["CHILD_UPDATE"]), timeout=10))["ok"]
    print(json.dumps(acks[0]), flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[3:], sys.argv[2]))
"""


async def spawn_child(server: RunningServer, *rooms: str, transport: str = "websocket",
                      token: str | None = None, update: dict[str, Any] | None = None
                      ) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """A client in its own process, joined to ``rooms``; returns it and its first ack."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, server.url, transport, *rooms, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **({"CHILD_TOKEN": token} if token else {}),
             **({"CHILD_UPDATE": json.dumps(update)} if update else {})},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    return proc, json.loads(line)


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


@pytest.fixture
async def grace_server() -> AsyncIterator[RunningServer]:
    # Short pings: a killed polling client is only noticed by its silence (its pending
    # long-poll GET is not read from, so the closed TCP connection goes unseen).
    async with running_server("--resume-grace", "30", "--rate-limit", "0",
                              "--ping-interval", "1", "--ping-timeout", "2") as server:
        yield server


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_killed_client_resumes_with_everything_in_order(grace_server: RunningServer,
                                                              transport: str) -> None:
    server = grace_server
    b = await RecordingClient().connect(server.url)
    await b.join("r")
    await b.join("r2")
    child, ack = await spawn_child(server, "r", "r2", transport=transport)
    a_id, token = ack["peerId"], ack["resumeToken"]
    await b.wait_for("peer-joined")
    await kill(child)
    line = await server.log_line(f"disconnect {a_id}")
    assert "lost" in line, line

    sent: list[int] = []

    async def send(seq: int) -> None:
        # signals, relays to A, and room-wide relays, all counted as delivered to A
        kind = seq % 3
        if kind == 0:
            reply = await b.request("signal", {"room": "r", "to": a_id, "data": {"seq": seq}})
            assert reply == {"ok": True}
        elif kind == 1:
            reply = await b.request("relay", {"room": "r2", "to": a_id, "event": "e",
                                              "data": {"seq": seq}})
            assert reply == {"ok": True, "delivered": 1}
        else:
            reply = await b.request("relay", {"room": "r", "event": "e", "data": {"seq": seq}})
            assert reply == {"ok": True, "delivered": 1}
        sent.append(seq)

    for seq in range(30):
        await send(seq)
    assert not b.received["peer-left"]

    a2 = RecordingClient()
    await a2.connect(server.url, transports=[transport])

    async def keep_sending() -> None:
        for seq in range(30, 90):
            await send(seq)

    sending = asyncio.create_task(keep_sending())
    resumed = await a2.join("r2", resume=token)
    await sending
    assert resumed["ok"] and resumed["resumed"] is True
    assert resumed["peerId"] == a_id and resumed["room"] == "r2"
    assert sorted(resumed["rooms"]) == ["r", "r2"] and resumed["dropped"] == 0
    assert resumed["resumeToken"] != token
    b_id = (await b.join("r"))["peerId"]
    assert [p["peerId"] for p in resumed["peers"]] == [b_id]

    def seqs() -> list[int]:
        got = [s["data"]["seq"] for s in a2.received["signal"]]
        got += [r["data"]["seq"] for r in a2.received["relay"]]
        return got

    async with a2._arrived:
        await asyncio.wait_for(a2._arrived.wait_for(lambda: len(seqs()) >= 90), 10)
    # all 90, none twice, each kind in order (the merged order is checked in the next test)
    assert sorted(seqs()) == list(range(90)) and len(seqs()) == 90
    for kind in ("signal", "relay"):
        got = [m["data"]["seq"] for m in a2.received[kind]]
        assert got == sorted(got), (kind, got)
        assert all(m["from"] == b_id for m in a2.received[kind])
    assert not b.received["peer-left"], b.received["peer-left"]

    # the token works once; the fresh one works
    thief = await RecordingClient().connect(server.url)
    reply = await thief.join("r", resume=token)
    assert reply["ok"] is False and reply["error"]["code"] == "resume-expired"
    await thief.disconnect()
    await a2.disconnect()
    await b.disconnect()


async def test_kept_messages_arrive_before_newer_ones(grace_server: RunningServer) -> None:
    """Every kept message reaches the resumed client before anything sent after the
    resume ack, merged across signal and relay."""
    server = grace_server
    arrivals: list[int] = []
    b = await RecordingClient().connect(server.url)
    await b.join("r")
    child, ack = await spawn_child(server, "r")
    await kill(child)
    await server.log_line(f"disconnect {ack['peerId']}")
    for seq in range(20):
        kind = "signal" if seq % 2 else "relay"
        body = {"room": "r", "to": ack["peerId"], "data": {"seq": seq}}
        if kind == "relay":
            body["event"] = "e"
        assert (await b.request(kind, body))["ok"]
    a2 = RecordingClient()
    for event in ("signal", "relay"):
        a2.sio.on(event, lambda payload: arrivals.append(payload["data"]["seq"]))
    await a2.connect(server.url)
    resumed = await a2.join("r", resume=ack["resumeToken"])
    assert resumed["resumed"] and resumed["peerId"] == ack["peerId"]
    for seq in range(20, 30):
        assert (await b.request("signal", {"room": "r", "to": ack["peerId"],
                                           "data": {"seq": seq}}))["ok"]
    last = await a2.request("relay", {"room": "r", "event": "ping", "data": 0, "to": (
        await b.join("r"))["peerId"]})
    assert last["ok"]
    await b.wait_for("relay")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(arrivals) < 30 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert arrivals == list(range(30))
    await a2.disconnect()
    await b.disconnect()


async def test_mailbox_is_bounded_and_reports_dropped(grace_server: RunningServer) -> None:
    """At most 1,000 messages are kept for a lost peer; the oldest go, and the resumed
    client is told how many."""
    server = grace_server
    b = await RecordingClient().connect(server.url)
    await b.join("r")
    child, ack = await spawn_child(server, "r")
    await kill(child)
    await server.log_line(f"disconnect {ack['peerId']}")
    for seq in range(1005):
        assert (await b.request("signal", {"room": "r", "to": ack["peerId"],
                                           "data": {"seq": seq}}))["ok"]
    a2 = await RecordingClient().connect(server.url)
    resumed = await a2.join("r", resume=ack["resumeToken"])
    assert resumed["dropped"] == 5
    got = await a2.wait_for("signal", 1000)
    assert [s["data"]["seq"] for s in got] == list(range(5, 1005))
    await a2.disconnect()
    await b.disconnect()


async def test_expiry_gives_peer_left_disconnected() -> None:
    async with running_server("--resume-grace", "1") as server:
        b = await RecordingClient().connect(server.url)
        await b.join("r")
        child, ack = await spawn_child(server, "r")
        await b.wait_for("peer-joined")
        loop = asyncio.get_running_loop()
        await kill(child)
        killed = loop.time()
        left = await b.wait_for("peer-left", timeout=10)
        assert left == [{"room": "r", "peerId": ack["peerId"], "reason": "disconnected"}]
        assert 0.9 <= loop.time() - killed < 4.0
        late = await RecordingClient().connect(server.url)
        reply = await late.join("r", resume=ack["resumeToken"])
        assert reply["ok"] is False and reply["error"]["code"] == "resume-expired"
        await late.disconnect()
        await b.disconnect()


@pytest.mark.parametrize("close_code,reason", [(1000, "left"), (1001, "left"),
                                               (4000, None), (1011, None)])
async def test_close_codes_tell_deliberate_from_lost(close_code: int, reason: str | None) -> None:
    """A websocket close frame 1000/1001 is deliberate (``left`` at once); any other code
    is a lost connection (no ``peer-left`` within the grace)."""
    from tests.security.raw import EioWS
    async with running_server("--resume-grace", "30") as server:
        b = await RecordingClient().connect(server.url)
        await b.join("r")
        ws = await EioWS.open(server)
        await ws.sio_connect()
        peer = (await ws.call("join", {"room": "r"}))["peerId"]
        await ws.send_raw(ws.frame(0x8, close_code.to_bytes(2, "big")))
        line = await server.log_line(f"disconnect {peer}")
        await ws.aclose()
        if reason:
            assert "left" in line.split(",")[-1]
            left = await b.wait_for("peer-left")
            assert left[0]["reason"] == reason
        else:
            assert "lost" in line
            assert not b.received["peer-left"]
        await b.disconnect()


async def test_python_socketio_disconnect_is_deliberate(server: RunningServer) -> None:
    """python-socketio's client closes its websocket (1000) before its DISCONNECT packet
    is flushed: still deliberate, ``left`` at once."""
    b = await RecordingClient().connect(server.url)
    await b.join("r")
    for transport in ("websocket", "polling"):
        a = await RecordingClient().connect(server.url, transports=[transport])
        peer = (await a.join("r"))["peerId"]
        await a.disconnect()
        left = await b.wait_for("peer-left", timeout=5)
        assert left[-1] == {"room": "r", "peerId": peer, "reason": "left"}
    await b.disconnect()


async def test_failed_resume_changes_nothing() -> None:
    """A resume that fails after the token was looked up (here: the room named in the
    resuming join is full) answers the error and changes nothing: the peer stays lost
    with its mail, no one sees it leave, and the same token then resumes it."""
    async with running_server("--resume-grace", "30", "--max-peers-per-room", "2") as server:
        b = await RecordingClient().connect(server.url)
        c = await RecordingClient().connect(server.url)
        await b.join("r")
        await b.join("full")
        await c.join("full")
        child, ack = await spawn_child(server, "r")
        await kill(child)
        await server.log_line(f"disconnect {ack['peerId']}")
        assert (await b.request("signal", {"room": "r", "to": ack["peerId"],
                                           "data": {"kept": 1}}))["ok"]
        a2 = await RecordingClient().connect(server.url)
        reply = await a2.join("full", resume=ack["resumeToken"])
        assert reply["ok"] is False and reply["error"]["code"] == "room-full"
        resumed = await a2.join("r", resume=ack["resumeToken"])
        assert resumed["ok"] and resumed["peerId"] == ack["peerId"] and resumed["rooms"] == ["r"]
        assert [s["data"] for s in await a2.wait_for("signal")] == [{"kept": 1}]
        assert not b.received["peer-left"] and not c.received["peer-left"]
        for client in (a2, b, c):
            await client.disconnect()


async def test_resume_checks_the_new_tokens_rooms_claim() -> None:
    """Resuming restores every room, so the resuming connection's token must allow all
    of them: a token for room "a" only cannot take back a peer that was in "a" and "b"
    (``unauthorized``, nothing changed); one allowing both can."""
    from signaling.auth import mint_token
    secret = "r" * 32
    async with running_server("--auth-secret", secret, "--resume-grace", "30") as server:
        both = mint_token(secret, ttl_seconds=60, rooms=["a", "b"], now=time.time())
        only_a = mint_token(secret, ttl_seconds=60, rooms=["a"], now=time.time())
        child, ack = await spawn_child(server, "a", "b", token=both)
        await kill(child)
        await server.log_line(f"disconnect {ack['peerId']}")
        narrow = await RecordingClient().connect(server.url, auth={"token": only_a})
        reply = await narrow.join("a", resume=ack["resumeToken"])
        assert reply["ok"] is False and reply["error"]["code"] == "unauthorized"
        await narrow.disconnect()
        wide = await RecordingClient().connect(server.url, auth={"token": both})
        resumed = await wide.join("a", resume=ack["resumeToken"])
        assert resumed["ok"] and sorted(resumed["rooms"]) == ["a", "b"]
        await wide.disconnect()
