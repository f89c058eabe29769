"""The outbound bound of a polling session (``transport.Connection`` on ``EngineSession``).

F10 (test_faults.py) proves the byte bound end to end behind a stalled reader; the
message bound needs a writer already blocked, so both bounds and the bookkeeping are
checked here on a connection itself, with no HTTP in front of it.
"""

from __future__ import annotations

from typing import Any

from signaling.settings import Settings
from signaling.transport import Connection, EngineServer
from signaling.wire.engineio import MAX_QUEUED_PACKETS, MIN_QUEUED_BYTES, Action, Reason


class Recorder:
    """The layer above, keeping what it is told."""

    def __init__(self) -> None:
        self.closed: list[tuple[str, Reason, bool]] = []

    async def on_message(self, conn: Connection, message: str | bytes) -> None:
        pass

    def on_close(self, conn: Connection, reason: Reason, lost: bool) -> Any:
        self.closed.append((conn.sid, reason, lost))

    def next_deadline(self, conn: Connection) -> float | None:
        return None

    def on_deadline(self, conn: Connection, now: float) -> None:
        pass


def make(max_relay_bytes: int = 750_000) -> tuple[Connection, EngineServer, Recorder]:
    recorder = Recorder()
    server = EngineServer(Settings(max_relay_bytes=max_relay_bytes), recorder, lambda conn: None)
    conn = server._open(websocket=False)
    return conn, server, recorder


async def test_message_bound_aborts_and_empties_the_queue() -> None:
    conn, server, recorder = make()
    for _ in range(MAX_QUEUED_PACKETS):
        conn.write("4" + "x" * 10)
    assert conn.engine.queued == MAX_QUEUED_PACKETS and not conn.ended
    conn.write("4x")
    assert conn.ended and conn.aborted and conn.sid not in server.sessions
    assert recorder.closed == [(conn.sid, Reason.TRANSPORT_ERROR, True)]  # lost: it may resume
    assert conn.engine.queued == 0
    conn.write("4x")  # nothing is queued after the abort
    assert conn.engine.queued == 0 and len(server.wheel) == 0


async def test_byte_bound() -> None:
    conn, server, recorder = make()
    limit = max(MIN_QUEUED_BYTES, 3 * server.max_payload)
    chunk = "4" + "x" * (512 * 1024)
    for _ in range(limit // (len(chunk) + 1)):
        conn.write(chunk)
    assert not conn.ended
    conn.write(chunk)
    assert conn.ended and recorder.closed[0][1:] == (Reason.TRANSPORT_ERROR, True)


async def test_polling_takes_packets_off_the_count() -> None:
    conn, _, _ = make()
    for _ in range(40):
        conn.write("4" + "x" * 99)
    assert conn.engine.queued == 40
    first = conn.engine.take()
    assert len(first) == 16  # python-engineio clients refuse more in one payload
    assert conn.engine.queued == 24 and conn.engine.queued_bytes == 24 * 101
    rest = conn.engine.take(None)
    assert len(rest) == 24 and conn.engine.queued == 0 and conn.engine.queued_bytes == 0


async def test_a_ping_deadline_after_the_close_does_nothing() -> None:
    """Bug 8's shape: a timer that comes round after the session ended is not an error."""
    conn, _, recorder = make()
    engine = conn.engine
    assert engine.on_timer(engine.next_timer) is Action.SEND_PING
    conn.end(Reason.CLIENT_CLOSE)
    assert engine.on_timer(engine.next_timer + 100) is Action.NONE
    conn.on_wheel()  # a late wheel turn
    assert recorder.closed == [(conn.sid, Reason.CLIENT_CLOSE, False)]
