"""The contract v1.1 transport items (protocol.md, "v1.1 additions", Robustness).

Each was reproduced against the python-engineio based server (issue 12): a POST of
tiny packets stalled the event loop, a trickling POST body stayed open and then
answered 500 with a traceback, attachments were only measured once the packet was
complete, and a binary packet missing an attachment kept its session open forever.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from signaling.settings import Settings
from signaling.transport import POST_SLICE, Connection, EngineServer
from signaling.wire.engineio import Reason
from tests.helpers.server import RunningServer
from tests.security.conftest import Bystanders, assert_dropped, connected, requests_total
from tests.security.raw import Polling, back_to_baseline, baseline

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Quiet:
    async def on_message(self, conn: Connection, message: str | bytes) -> None:
        pass

    def on_close(self, conn: Connection, reason: Reason, lost: bool) -> None:
        return None

    def next_deadline(self, conn: Connection) -> float | None:
        return None

    def on_deadline(self, conn: Connection, now: float) -> None:
        pass


async def test_a_long_post_yields_to_the_loop_between_slices() -> None:
    """A POST of 450,000 PONGs (900 KB) is worked through in slices: other work runs
    between them (counted in loop turns, not timed)."""
    server = EngineServer(Settings(), Quiet(), lambda conn: None)
    conn = server._open(websocket=False)
    packets = 450_000
    turns = 0
    done = False

    def turn() -> None:
        nonlocal turns
        turns += 1
        if not done:
            asyncio.get_running_loop().call_soon(turn)

    asyncio.get_running_loop().call_soon(turn)
    await server._take_payload(conn, "\x1e".join(["3"] * packets).encode())
    done = True
    assert not conn.ended
    assert turns >= packets // POST_SLICE - 1
    conn.end(Reason.CLIENT_CLOSE)


async def test_healthz_answers_during_a_megabyte_post_of_pongs(
        srv: RunningServer, http: aiohttp.ClientSession, bystanders: Bystanders) -> None:
    """The real server: /healthz is answered while such a POST is being handled."""
    p = await Polling(srv, http).open()
    await p.sio_connect()
    post = asyncio.ensure_future(p.post("\x1e".join(["3"] * 450_000)))
    loop = asyncio.get_running_loop()
    slowest = 0.0
    while not post.done():
        started = loop.time()
        async with http.get(f"{srv.url}/healthz") as r:
            assert r.status == 200
        slowest = max(slowest, loop.time() - started)
    assert (await post)[0] == 200
    assert slowest < 1.0, slowest  # the old server: 1,041 ms for one answer (see bench/)
    await bystanders.still_fine()


async def test_a_trickling_post_body_gets_408_at_its_deadline(
        srv: RunningServer, http: aiohttp.ClientSession, bystanders: Bystanders) -> None:
    """Content-Length 1000, a byte every 0.5 s (never idle past the 2 s idle timeout):
    408 at the 10 s body deadline, the session closed, no 5xx, no traceback."""
    p = await Polling(srv, http).open()
    await p.sio_connect()
    base = baseline(srv)
    log_before = len(srv.stderr_lines)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write((f"POST /socket.io/?EIO=4&transport=polling&sid={p.sid} HTTP/1.1\r\n"
                  "Host: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n").encode())
    answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    for _ in range(30):  # 15 s at most
        if answer.done():
            break
        writer.write(b"3")
        await writer.drain()
        await asyncio.wait([answer], timeout=0.5)
    head = await asyncio.wait_for(answer, 1.0)
    assert head.startswith(b"HTTP/1.1 408"), head
    writer.close()
    assert await p.gone(2.0)
    new_lines = "".join(srv.stderr_lines[log_before:])
    assert "Traceback" not in new_lines and " ERROR " not in new_lines, new_lines
    await bystanders.still_fine()
    await back_to_baseline(srv, base)


async def test_attachments_are_counted_as_they_arrive(
        srv: RunningServer, http: aiohttp.ClientSession, bystanders: Bystanders) -> None:
    """10 attachments announced, 600 KiB each (the limit: 1 MiB relay + 64 KiB): the client
    is dropped on the attachment that passes the limit, not when the packet completes."""
    ws = await connected(srv)
    before = await requests_total(srv, http)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
    await ws.send_text('4510-1["relay",{"room":"r","event":"e","data":[' + placeholders + "]}]")
    chunk = b"\x00" * 600 * 1024
    await ws.send_binary(chunk)
    await ws.send_binary(chunk)  # 1.2 MiB > 1 MiB + 64 KiB: dropped here, 8 still due
    try:
        await ws.send_binary(chunk)
    except (ConnectionError, OSError):
        pass  # already dropped
    await assert_dropped(ws, srv, http, before)
    await bystanders.still_fine()


async def test_an_unfinished_binary_packet_ends_its_session(
        srv: RunningServer, http: aiohttp.ClientSession, bystanders: Bystanders) -> None:
    """A binary packet missing one attachment: the session ends after 10 s (the timer
    wheel's tick late at most), pings answered all along."""
    ws = await connected(srv)
    before = await requests_total(srv, http)
    await ws.send_text('452-1["relay",{"room":"r","event":"e","data":'
                       '[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]')
    await ws.send_binary(b"only one")
    loop = asyncio.get_running_loop()
    started = loop.time()
    how = await ws.answer_pings_until_end(14.0)
    assert 9.0 < loop.time() - started < 14.0
    assert how is not None
    assert await requests_total(srv, http) == before
    assert "still missing attachments" in srv.log()
    await ws.aclose()
    await bystanders.still_fine()
