"""The outbound queue bound of ``HardenedSocket`` (socketio_fixes), packet by packet.

F10 (test_faults.py) proves the byte bound end to end behind a stalled reader; the
message bound needs a writer already blocked, so both bounds and the bookkeeping are
checked here on the socket itself, with a stand-in for python-engineio's server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import engineio
from engineio import packet as eio_packet

from signaling.socketio_fixes import MAX_QUEUED_MESSAGES, MIN_QUEUED_BYTES, HardenedSocket
from signaling.timer_wheel import TimerWheel


class FakeServer:
    reason = engineio.Server.reason
    ping_interval = 25.0
    ping_timeout = 20.0
    max_http_buffer_size = 1_000_000

    def __init__(self) -> None:
        self.sockets: dict[str, Any] = {}
        self.disconnects: list[tuple[str, Any]] = []
        self.ping_wheel = TimerWheel()

    def create_queue(self) -> asyncio.Queue[Any]:
        return asyncio.Queue()

    async def _trigger_event(self, event: str, sid: str, *args: Any, **kwargs: Any) -> None:
        if event == "disconnect":
            self.disconnects.append((sid, args[0]))

    def start_background_task(self, target: Any, *args: Any) -> Any:
        return asyncio.ensure_future(target(*args))


def make() -> tuple[HardenedSocket, FakeServer]:
    server = FakeServer()
    sock = HardenedSocket(server, "sid1")
    sock.connected = True
    server.sockets["sid1"] = sock
    return sock, server


def msg(size: int) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, data="x" * size)


async def test_message_bound_aborts_and_empties_the_queue() -> None:
    sock, server = make()
    for _ in range(MAX_QUEUED_MESSAGES):
        await sock.send(msg(10))
    assert sock.queued_messages == MAX_QUEUED_MESSAGES and not sock.aborted
    await sock.send(msg(10))
    assert sock.aborted and "sid1" not in server.sockets
    assert server.disconnects == [("sid1", server.reason.TRANSPORT_ERROR)]
    left = [sock.queue.get_nowait() for _ in range(sock.queue.qsize())]
    assert left and all(item is None for item in left)  # only end markers remain
    await sock.send(msg(10))  # nothing is queued after the abort
    assert sock.queue.qsize() == 0


async def test_byte_bound() -> None:
    sock, server = make()
    limit = max(MIN_QUEUED_BYTES, 3 * server.max_http_buffer_size)
    chunk = 512 * 1024
    for _ in range(limit // (chunk + 1)):
        await sock.send(msg(chunk))
    assert not sock.aborted
    await sock.send(msg(chunk))
    assert sock.aborted and server.disconnects[0][1] == server.reason.TRANSPORT_ERROR


async def test_polling_takes_packets_off_the_count() -> None:
    sock, _ = make()
    for _ in range(40):
        await sock.send(msg(100))
    assert sock.queued_messages == 40
    first = await sock.poll()
    assert len(first) == 16  # python-engineio clients refuse more in one payload
    assert sock.queued_messages == 24 and sock.queued_bytes == 24 * 101
    sock.upgraded = True
    rest = await sock.poll()
    assert len(rest) == 24 and sock.queued_messages == 0 and sock.queued_bytes == 0


async def test_a_ping_check_overtaken_by_the_close_answers_false_not_an_exception() -> None:
    """Bug 8: the check waits PING_CHECK_SLACK for a pong already on its way; a session
    closed meanwhile is not an error (upstream's service task logged it as a traceback)."""
    sock, server = make()
    sock.last_ping = time.time() - server.ping_timeout - 1  # the deadline has passed
    check = asyncio.ensure_future(sock.check_ping_timeout())
    await asyncio.sleep(0)  # the check is now waiting for a late pong
    await sock.close(wait=False, abort=True, reason=server.reason.CLIENT_DISCONNECT)
    assert await asyncio.wait_for(check, 2.0) is False
