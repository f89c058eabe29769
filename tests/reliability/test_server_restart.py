"""F1: the server is stopped (SIGTERM) or killed (SIGKILL) in the middle of a call.

Two Python Peers with an open data channel keep sending each other a counter
(``emit`` to everyone, so it does not depend on ids) while the server is
gone: the data channel does not need it. The server comes back on the same
port with empty state (the memory backend), so the resume tokens are unknown:
each Peer's resume is answered ``resume-expired`` and it joins afresh (a new
peerId) within 10 s, and each roster then holds the other exactly once.

What is lost: counter values emitted while a Peer has no remote at all (after
its old remote left and before the new one joined) go to nobody, by the
contract's definition of "everyone else"; the test checks the values that
arrive are strictly increasing (no duplicate, no reorder) and that the
counter kept increasing all through the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from typing import Any

import pytest

from peer import Peer
from tests.helpers.clients import RecordingClient
from tests.helpers.server import running_server

from .support import free_port, until

ROOM = "f1"
REJOIN_BOUND = 10.0


class Watch:
    """What one Peer saw: counter values, signaling states, upgrades."""

    def __init__(self, peer: Peer) -> None:
        self.counts: list[int] = []
        self.states: list[str] = []
        self.upgrades = 0
        peer.on("count", lambda sender, n: self.counts.append(n))
        peer.on("signaling", lambda state, _id: self.states.append(state))
        peer.on("upgrade", lambda peer_id, _: self._upgraded())

    def _upgraded(self) -> None:
        self.upgrades += 1


async def count_forever(peer: Peer, sent: list[int], stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        with contextlib.suppress(Exception):  # counted by the receiver, not here
            await peer.emit("count", n)
            sent.append(n)
        n += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.02)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_data_channel_flows_through_a_server_restart(how: str) -> None:
    port = free_port()
    flags = ("--port", str(port), "--resume-grace", "15")
    url = f"http://127.0.0.1:{port}"
    a, b = Peer(url, ROOM), Peer(url, ROOM)
    at_a, at_b = Watch(a), Watch(b)
    sent_a: list[int] = []
    sent_b: list[int] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with running_server(*flags) as first:
            await a.connect()
            await b.connect()
            await until(lambda: at_a.upgrades >= 1 and at_b.upgrades >= 1)
            old_a, old_b = a.id, b.id
            tasks = [asyncio.create_task(count_forever(a, sent_a, stop)),
                     asyncio.create_task(count_forever(b, sent_b, stop))]
            await until(lambda: len(at_b.counts) >= 5 and len(at_a.counts) >= 5)

            if how == "SIGKILL":
                first.process.kill()
            else:
                first.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(first.process.wait(), 10) == (
                -signal.SIGKILL if how == "SIGKILL" else 0)
            await until(lambda: "reconnecting" in at_a.states and "reconnecting" in at_b.states)
            # The server is gone; the data channel is not.
            during_b, during_a = len(at_b.counts), len(at_a.counts)
            await until(lambda: len(at_b.counts) >= during_b + 20
                        and len(at_a.counts) >= during_a + 20)
            assert a.transport(old_b) == "webrtc" and b.transport(old_a) == "webrtc"

        async with running_server(*flags):
            restarted = time.monotonic()
            back = ("resumed", "rejoined")
            await until(lambda: any(s in back for s in at_a.states)
                        and any(s in back for s in at_b.states), timeout=REJOIN_BOUND + 5)
            took = time.monotonic() - restarted
            assert took < REJOIN_BOUND, f"re-join took {took:.1f} s"
            # Each roster holds the other exactly once, under its current id.
            await until(lambda: list(a.peers) == [b.id] and list(b.peers) == [a.id])
            observer = RecordingClient()
            await observer.connect(url)
            try:
                ack = await observer.join(ROOM)
                ids = [p["peerId"] for p in ack["peers"]]
                assert sorted(ids) == sorted({a.id, b.id}), ids
            finally:
                await observer.disconnect()
            # The counter goes on over the new call.
            await until(lambda: at_a.upgrades >= 2 and at_b.upgrades >= 2)
            mark_a, mark_b = len(at_a.counts), len(at_b.counts)
            await until(lambda: len(at_b.counts) >= mark_b + 20
                        and len(at_a.counts) >= mark_a + 20)
            stop.set()
            await asyncio.gather(*tasks)
            for counts in (at_a.counts, at_b.counts):
                assert all(x < y for x, y in itertools.pairwise(counts)), "duplicate or reorder"
            print(f"F1 {how}: re-joined in {took:.1f} s; a got {len(at_a.counts)} of "
                  f"{len(sent_b)}, b got {len(at_b.counts)} of {len(sent_a)}; "
                  f"states a {at_a.states}")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a.close()
        await b.close()


async def test_sigterm_announces_no_peer_left() -> None:
    """A stopping node loses its connections; it does not make its peers leave.

    Before the fix, ``close_all`` closed the sessions one by one as deliberate
    disconnects, so the clients still connected got ``peer-left`` ``left`` for
    those closed before them, and a Peer dropped its live data channel."""
    async with running_server() as server:
        first, second = RecordingClient(), RecordingClient()
        await first.connect(server.url)
        await second.connect(server.url, transports=["polling"])
        await first.join(ROOM)
        await second.join(ROOM)
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 10) == 0
        assert first.received["peer-left"] == [] and second.received["peer-left"] == []
        await first.disconnect()
        await second.disconnect()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_every_signal_across_a_restart_is_acked_or_fails_to_its_sender(how: str) -> None:
    """F1's "each outage-time signal acked or failed": a client sends ``signal`` to a
    room-mate every 10 ms before, during and after the restart. Every attempt ends in
    exactly one outcome its sender sees (an ack, or an error raised at once or after
    the ack timeout: none hangs, none is silent); every signal acked ``ok`` reached its
    receiver, once and in order; nothing arrives that was not sent."""
    port = free_port()
    flags = ("--port", str(port), "--rate-limit", "0")
    url = f"http://127.0.0.1:{port}"
    outcomes: list[tuple[int, str, int]] = []  # (n, outcome, server generation)
    route: dict[str, Any] = {}
    stop = asyncio.Event()

    async def send_forever() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            sender, to, generation = route["sender"], route["to"], route["generation"]
            try:
                reply = await sender.sio.call("signal", {"room": ROOM, "to": to, "data": {"n": n}},
                                            timeout=3)
                outcome = "ok" if reply.get("ok") else f"error:{reply['error']['code']}"
            except Exception as exc:  # noqa: BLE001 - any failure is an outcome the sender sees
                outcome = f"failed:{type(exc).__name__}"
            outcomes.append((n, outcome, generation))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.01)

    async def pair(generation: int) -> tuple[RecordingClient, RecordingClient]:
        sender, receiver = RecordingClient(), RecordingClient()
        await sender.connect(url)
        await receiver.connect(url)
        to = (await receiver.join(ROOM))["peerId"]
        await sender.join(ROOM)
        route.update(sender=sender, to=to, generation=generation)
        return sender, receiver

    def oks(generation: int) -> int:
        return sum(1 for _, outcome, g in outcomes if outcome == "ok" and g == generation)

    clients: list[RecordingClient] = []
    sending: asyncio.Task[None] | None = None
    try:
        async with running_server(*flags) as first:
            clients += await pair(1)
            sending = asyncio.create_task(send_forever())
            await until(lambda: oks(1) >= 20)
            if how == "SIGKILL":
                first.process.kill()
            else:
                first.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(first.process.wait(), 10)
            await until(lambda: sum(o.startswith("failed") for _, o, _ in outcomes) >= 20)
        async with running_server(*flags):
            clients += await pair(2)
            await until(lambda: oks(2) >= 20)
            stop.set()
            await sending
    finally:
        stop.set()
        if sending is not None:
            await asyncio.gather(sending, return_exceptions=True)
        for client in clients:
            with contextlib.suppress(Exception):
                await client.sio.disconnect()

    assert [n for n, _, _ in outcomes] == list(range(len(outcomes))), "an attempt without an outcome"
    kinds = {outcome for _, outcome, _ in outcomes}
    assert kinds <= {"ok", "failed:BadNamespaceError", "failed:DisconnectedError",
                     "failed:TimeoutError"}, kinds
    sent = {n for n, _, _ in outcomes}
    for generation, receiver in ((1, clients[1]), (2, clients[3])):
        got = [event["data"]["n"] for event in receiver.received["signal"]]
        assert all(x < y for x, y in itertools.pairwise(got)), "duplicate or reorder"
        assert set(got) <= sent
        acked = [n for n, outcome, g in outcomes if outcome == "ok" and g == generation]
        assert set(acked) <= set(got), f"acked but never delivered: {sorted(set(acked) - set(got))[:5]}"
    print(f"F1 signals {how}: {len(outcomes)} attempts, "
          f"{sum(o == 'ok' for _, o, _ in outcomes)} ok, "
          f"{sum(o.startswith('failed') for _, o, _ in outcomes)} failed to the sender")
