"""F8: a peer vanishes without closing anything (its process is SIGKILLed).

A SIGKILLed process on this machine still has its TCP connections ended by
the kernel (FIN), so the server sees a lost connection at once and
``peer-left`` comes after the resume grace. The variant that sends no FIN
at all (a frozen process, SIGSTOP, like a machine dropped off the network)
is noticed by the ping timeout. Either way the server (short settings here: ping interval
1 s, timeout 1 s, resume grace 1 s) and sends ``peer-left`` ``disconnected``;
the remote Python Peer then drops its side of the call (the aiortc
connection, its tasks and sockets), so nothing grows with each vanished
peer. Without the server, aiortc alone would only notice through aioice's
consent checks (6 x 5 s, about 30 s); the Peer does not wait for that.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import pytest

from peer import Peer
from tests.helpers.server import ROOT, running_server

from .support import fd_count, task_count, until

ROOM = "f8"
# ping interval + ping timeout + resume grace + slack
LEFT_BOUND = 1 + 1 + 1 + 4


async def one_vanishing_peer(url: str, local: Peer, left: list[tuple[str, Any]],
                             how: signal.Signals = signal.SIGKILL) -> float:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.peer_process", url, ROOM,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    try:
        line = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().split()
        assert line[0] == "id", line
        remote = line[1]
        line = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().split()
        assert line == ["upgrade", local.id], line
        await until(lambda: remote in local.peers and local.transport(remote) == "webrtc")
        child.send_signal(how)
        killed = time.monotonic()
        await until(lambda: any(peer_id == remote for peer_id, _ in left), timeout=LEFT_BOUND + 5)
        took = time.monotonic() - killed
        assert (remote, "disconnected") in left
        await until(lambda: remote not in local.peers)
        return took
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
async def test_vanished_peer_is_announced_and_cleaned_up_without_growth(
    how: signal.Signals,
) -> None:
    async with running_server("--ping-interval", "1", "--ping-timeout", "1",
                              "--resume-grace", "1") as server:
        left: list[tuple[str, Any]] = []
        local = Peer(server.url, ROOM)
        local.on("peer-left", lambda peer_id, reason: left.append((peer_id, reason)))
        async with local:
            await one_vanishing_peer(server.url, local, left)  # warms every cache up
            await until(lambda: not local.peers)
            tasks, fds = task_count(), fd_count()
            took = []
            for _ in range(2):
                took.append(await one_vanishing_peer(server.url, local, left, how))
            # Back to where it was after the first one: tasks and fds.
            await until(lambda: task_count() <= tasks and fd_count() <= fds, timeout=10)
            print(f"F8 {how.name}: peer-left {', '.join(f'{t:.1f}' for t in took)} s after the signal; "
                  f"tasks {tasks} -> {task_count()}, fds {fds} -> {fd_count()}")
            assert max(took) < LEFT_BOUND
            if how == signal.SIGSTOP:  # noticed by the ping timeout, then the grace
                assert min(took) >= 1.0
