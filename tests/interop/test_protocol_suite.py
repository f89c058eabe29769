"""The cases of the official Engine.IO / Socket.IO protocol test suites, on this server.

Each test follows one case of socketio/engine.io-protocol and socketio/socket.io-protocol
(``test-suite/test-suite.js``), written here over the raw clients of tests/security/raw.py.
The suites' server echoes ``message``; this one serves the contract's requests, so an echo
is replaced by a request and its ack. Two deliberate differences, also in docs/protocol.md:
only the namespace ``/`` is served (a custom one gets CONNECT_ERROR, whose message is
"Unable to connect...", not the reference server's "Invalid namespace"), and an Engine.IO
``4hello`` is not a Socket.IO packet, so it ends the session instead of being echoed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.helpers.server import RunningServer, running_server
from tests.security.raw import EOF, EioWS, Ended, Polling, RawWS

pytestmark = pytest.mark.asyncio(loop_scope="module")

PING_INTERVAL = 0.3  # the suites' 300 ms / 200 ms
PING_TIMEOUT = 0.2


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def srv() -> AsyncIterator[RunningServer]:
    async with running_server("--max-relay-bytes", "65536") as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fast() -> AsyncIterator[RunningServer]:
    """The suites' heartbeat: ping every 300 ms, 200 ms to answer."""
    async with running_server("--ping-interval", str(PING_INTERVAL), "--ping-timeout",
                              str(PING_TIMEOUT)) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def url(srv: RunningServer, query: str) -> str:
    return f"{srv.url}/socket.io/?{query}"


# -- Engine.IO: handshake ---------------------------------------------------------
async def test_polling_handshake_opens_a_session(srv: RunningServer, http: aiohttp.ClientSession) -> None:
    async with http.get(url(srv, "EIO=4&transport=polling")) as r:
        assert r.status == 200
        text = await r.text()
    assert text[0] == "0"
    info = json.loads(text[1:])
    assert set(info) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(info["sid"], str) and info["upgrades"] == ["websocket"]
    assert (info["pingInterval"], info["pingTimeout"]) == (25000, 20000)
    assert info["maxPayload"] == (65536 * 4 + 2) // 3 + 4096


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_a_new_session_needs_a_get(srv: RunningServer, http: aiohttp.ClientSession,
                                         method: str) -> None:
    async with http.request(method, url(srv, "EIO=4&transport=polling")) as r:
        assert r.status == 400


async def test_websocket_handshake_opens_a_session(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    assert ws.open_info["upgrades"] == [] and ws.open_info["pingInterval"] == 25000
    await ws.aclose()


@pytest.mark.parametrize("query", ["transport=websocket", "EIO=abc&transport=websocket",
                                   "EIO=4&transport=abc"])
async def test_websocket_handshake_refused(srv: RunningServer, query: str) -> None:
    ws = await RawWS.connect(srv.port, query)
    assert ws.status == 400
    await ws.aclose()


# -- Engine.IO: messages -------------------------------------------------------------
async def test_polling_payload_of_several_packets_with_binary(
        srv: RunningServer, http: aiohttp.ClientSession) -> None:
    """Text and ``b``-base64 packets in one POST, the answers in one poll."""
    p = await Polling(srv, http).open()
    await p.sio_connect()
    other = await Polling(srv, http).open()
    await other.sio_connect()
    assert (await other.post('421["join",{"room":"suite-bin"}]'))[0] == 200
    assert '"ok":true' in (await other.get())[1]
    body = ('421["join",{"room":"suite-bin"}]\x1e'
            '451-2["relay",{"room":"suite-bin","event":"e","data":{"_placeholder":true,"num":0}}]'
            "\x1ebAQIDBA==")
    status, text = await p.post(body)
    assert (status, text) == (200, "ok")
    got: list[str] = []
    while not any(pkt.startswith("432") for pkt in got):
        status, text = await p.get()
        assert status == 200
        got += text.split("\x1e")
    assert '432[{"ok":true,"delivered":1}]' in got
    relayed: list[str] = []
    while "bAQIDBA==" not in relayed:
        status, text = await other.get()
        assert status == 200
        relayed += text.split("\x1e")
    header = relayed[relayed.index("bAQIDBA==") - 1]
    assert header.startswith('451-["relay"') and '{"_placeholder":true,"num":0}' in header
    await p.post("1")
    await other.post("1")


@pytest.mark.parametrize("body", ["abc", "4hello"])
async def test_polling_invalid_packet_closes_the_session(
        srv: RunningServer, http: aiohttp.ClientSession, body: str) -> None:
    p = await Polling(srv, http).open()
    status, _ = await p.post(body)
    assert status == 400
    assert (await p.get())[0] == 400


async def test_duplicate_poll_closes_the_session(srv: RunningServer, http: aiohttp.ClientSession) -> None:
    p = await Polling(srv, http).open()
    first = asyncio.ensure_future(p.get())
    await asyncio.sleep(0.05)  # the first GET is pending (nothing queued before the ping)
    assert not first.done()
    assert (await p.get())[0] == 400
    assert await asyncio.wait_for(first, 5) == (200, "1")
    assert (await p.get())[0] == 400


@pytest.mark.parametrize("frame", [b"\x01\x02\x03\x04", "abc"])
async def test_websocket_binary_or_invalid_before_connect_closes(srv: RunningServer,
                                                                 frame: str | bytes) -> None:
    """A binary frame before any binary packet header, or ``abc``: the session ends."""
    ws = await EioWS.open(srv)
    if isinstance(frame, bytes):
        await ws.send_binary(frame)
    else:
        await ws.send_text(frame)
    how = await ws.ended(2.0)
    assert how == EOF or isinstance(how, int)
    await ws.aclose()


# -- Engine.IO: heartbeat ------------------------------------------------------------
async def test_polling_ping_pong(fast: RunningServer, http: aiohttp.ClientSession) -> None:
    p = await Polling(fast, http).open()
    for _ in range(3):
        assert await p.get() == (200, "2")
        assert (await p.post("3"))[0] == 200


async def test_polling_ping_timeout(fast: RunningServer, http: aiohttp.ClientSession) -> None:
    p = await Polling(fast, http).open()
    assert await p.get() == (200, "2")  # and no pong
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while (status := (await p.get(timeout=5.0))[0]) == 200:
        assert loop.time() < deadline, "still open"
    assert status == 400


async def test_websocket_ping_pong_and_timeout(fast: RunningServer) -> None:
    ws = await EioWS.connect(fast.port)
    await ws.recv_frame()  # the open packet
    for _ in range(3):
        assert await ws.recv_frame(5.0) == (0x1, b"2")
        await ws.send_text("3")
    assert await ws.recv_frame(5.0) == (0x1, b"2")  # unanswered now
    with pytest.raises(Ended):
        await ws.recv_frame(5.0)
    await ws.aclose()


# -- Engine.IO: close ----------------------------------------------------------------
async def test_polling_close_ends_the_pending_poll_with_a_noop(
        srv: RunningServer, http: aiohttp.ClientSession) -> None:
    p = await Polling(srv, http).open()
    pending = asyncio.ensure_future(p.get())
    await asyncio.sleep(0.05)
    assert (await p.post("1"))[0] == 200
    assert await asyncio.wait_for(pending, 5) == (200, "6")
    assert (await p.get())[0] == 400


async def test_websocket_close_packet(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    await ws.send_text("1")
    how = await ws.ended(2.0)
    assert how == EOF or isinstance(how, int)
    await ws.aclose()


# -- Engine.IO: upgrade ----------------------------------------------------------------
async def test_upgrade_from_polling(srv: RunningServer, http: aiohttp.ClientSession) -> None:
    p = await Polling(srv, http).open()
    await p.sio_connect()
    ws = await EioWS.connect(srv.port, f"EIO=4&transport=websocket&sid={p.sid}")
    assert ws.status == 101
    await ws.send_text("2probe")
    assert await ws.recv_frame() == (0x1, b"3probe")
    assert await p.get() == (200, "6")  # the NOOP that ends a poll cleanly
    await ws.send_text("5")
    assert isinstance(ws, EioWS)
    ack = await ws.call("join", {"room": "suite-upgrade"})
    assert ack["ok"]
    assert (await p.get())[0] == 400  # HTTP requests with the sid are refused now
    second = await RawWS.connect(srv.port, f"EIO=4&transport=websocket&sid={p.sid}")
    assert second.status == 400  # and so is another websocket
    await second.aclose()
    await ws.aclose()


# -- Socket.IO: connect / disconnect -----------------------------------------------------
async def test_connect_with_a_payload(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    reply = await ws.sio_connect({"token": "ignored without --auth-secret"})
    assert set(json.loads(reply[1:])) == {"sid"}
    await ws.aclose()


async def test_unknown_namespace_gets_connect_error(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    await ws.send_text("40/random")
    reply = await ws.next_message()
    assert isinstance(reply, str) and reply.startswith("4/random,")
    assert "Unable to connect" in json.loads(reply[len("4/random,"):])["message"]
    await ws.aclose()


async def test_no_connect_closes_the_connection(fast: RunningServer) -> None:
    """Pings answered, no ``40``: closed at the connect deadline (10 s)."""
    ws = await EioWS.open(fast)
    how = await ws.answer_pings_until_end(15.0)
    assert how == EOF or isinstance(how, int)
    await ws.aclose()


async def test_disconnect_from_main_namespace_keeps_engineio(fast: RunningServer) -> None:
    """``41``: the client leaves ``/``; its Engine.IO session goes on (the next packet is
    a ping), and it may connect again."""
    ws = await EioWS.open(fast)
    await ws.sio_connect()
    await ws.send_text("41")
    assert await ws.recv_frame(5.0) == (0x1, b"2")
    await ws.send_text("3")
    await ws.sio_connect()
    assert (await ws.call("join", {"room": "suite-again"}))["ok"]
    await ws.aclose()


async def test_disconnect_from_a_namespace_never_connected(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    await ws.sio_connect()
    await ws.send_text("41/custom,")
    assert (await ws.call("join", {"room": "suite-custom"}))["ok"]
    await ws.aclose()


# -- Socket.IO: messages -------------------------------------------------------------------
async def test_plain_text_event_with_ack(srv: RunningServer) -> None:
    ws = await EioWS.open(srv)
    await ws.sio_connect()
    await ws.send_text('42456["join",{"room":"suite-ack","meta":{"3":[false]}}]')
    reply = await ws.next_message()
    assert isinstance(reply, str) and reply.startswith("3456[")
    assert json.loads(reply[4:])[0]["ok"] is True
    await ws.aclose()


async def test_binary_event_with_ack_and_the_relay_out(srv: RunningServer) -> None:
    a = await EioWS.open(srv)
    await a.sio_connect()
    b = await EioWS.open(srv)
    await b.sio_connect()
    assert (await a.call("join", {"room": "suite-bin-ws"}))["ok"]
    b_id = (await b.call("join", {"room": "suite-bin-ws"}))["peerId"]
    await a.send_text('452-789["relay",{"room":"suite-bin-ws","event":"e","to":"' + b_id
                      + '","data":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]')
    await a.send_binary(bytes([1, 2, 3]))
    await a.send_binary(bytes([4, 5, 6]))
    while (reply := await a.next_message()) != '3789[{"ok":true,"delivered":1}]':
        assert isinstance(reply, str) and reply.startswith("2"), reply  # peer-joined
    header = await b.next_message()
    while isinstance(header, str) and not header.startswith("52-"):
        header = await b.next_message()
    assert isinstance(header, str)
    body = json.loads(header[3:])
    assert body[0] == "relay"
    assert body[1]["data"] == [{"_placeholder": True, "num": 0}, {"_placeholder": True, "num": 1}]
    assert await b.next_message() == bytes([1, 2, 3])
    assert await b.next_message() == bytes([4, 5, 6])
    await a.aclose()
    await b.aclose()


@pytest.mark.parametrize("frame", ["4abc", "42{}", '42abc["join",1,"2",{"3":[false]}]'])
async def test_invalid_format_closes_the_connection(srv: RunningServer, frame: str) -> None:
    ws = await EioWS.open(srv)
    await ws.sio_connect()
    await ws.send_text(frame)
    how = await ws.ended(2.0)
    assert how == EOF or isinstance(how, int)
    await ws.aclose()


@pytest.mark.parametrize("agent,most", [("node-XMLHttpRequest", 40), ("Mozilla/5.0 (X11)", 40),
                                        ("Python/3.11 aiohttp/3.14", 16), ("", 16)])
async def test_poll_answers_hold_16_packets_unless_the_client_takes_more(
        srv: RunningServer, http: aiohttp.ClientSession, agent: str, most: int) -> None:
    """python-engineio's client refuses a payload of more than 16 packets; browsers and
    Node's engine.io-client take any number, so they get everything queued at once."""
    p = await Polling(srv, http).open()
    await p.sio_connect()
    body = "\x1e".join(f'42{i}["leave",{{"room":"nowhere"}}]' for i in range(40))
    assert (await p.post(body))[0] == 200
    async with http.get(url(srv, f"EIO=4&transport=polling&sid={p.sid}"),
                        headers={"User-Agent": agent}) as r:
        assert r.status == 200
        packets = (await r.text()).split("\x1e")
    assert len(packets) == most
    await p.post("1")
