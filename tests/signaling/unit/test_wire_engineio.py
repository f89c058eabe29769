"""The Engine.IO core, as tables: codec, every state transition, timers, bounds. No server."""

from __future__ import annotations

import json

import pytest

from signaling.wire import engineio as eio
from signaling.wire.engineio import Action, EngineSession, ProtocolError, Reason, State


def session(websocket: bool = False, now: float = 0.0) -> EngineSession:
    return EngineSession("sid", websocket=websocket, now=now, ping_interval=25.0,
                         ping_timeout=20.0, max_payload=1000)


# -- codec -------------------------------------------------------------------
@pytest.mark.parametrize("frame,packet", [
    ("4hello", ("4", "hello")), ("3", ("3", "")), ("2probe", ("2", "probe")), ("1", ("1", "")),
    ("5", ("5", "")), ("6", ("6", "")), (b"\x00\x01", ("4", b"\x00\x01")), ("4", ("4", "")),
])
def test_decode_frame(frame: str | bytes, packet: eio.Packet) -> None:
    assert eio.decode_frame(frame) == packet


@pytest.mark.parametrize("frame", ["", "x", "9", "b!!", "7abc", "-1"])
def test_undecodable_frames(frame: str) -> None:
    with pytest.raises(ProtocolError):
        eio.decode_frame(frame)


def test_payload_round_trip() -> None:
    packets: list[str | bytes] = ["4hello", "2", b"\x01\x02\xff", "4\u00e9\u2603"]
    body = eio.encode_payload(packets)
    assert body == "4hello\x1e2\x1ebAQL/\x1e4\u00e9\u2603"
    assert eio.decode_payload(body) == [("4", "hello"), ("2", ""), ("4", b"\x01\x02\xff"),
                                        ("4", "\u00e9\u2603")]


@pytest.mark.parametrize("body", ["b!!notbase64", "4a\x1ebAB=C", "4a\x1e", "x", "4a\x1e\x1e4b"])
def test_malformed_payloads(body: str) -> None:
    with pytest.raises(ProtocolError):
        eio.decode_payload(body)


def test_open_packet() -> None:
    text = eio.open_packet("abc", upgrades=True, ping_interval=25.0, ping_timeout=20.0,
                           max_payload=1000)
    assert text[0] == "0"
    assert json.loads(text[1:]) == {"sid": "abc", "upgrades": ["websocket"], "pingInterval": 25000,
                                    "pingTimeout": 20000, "maxPayload": 1000}
    bare = eio.open_packet("abc", upgrades=False, ping_interval=1.5, ping_timeout=2, max_payload=9)
    assert json.loads(bare[1:])["upgrades"] == [] and json.loads(bare[1:])["pingInterval"] == 1500


def test_parse_open_reads_what_open_packet_writes() -> None:
    text = eio.open_packet("abc", upgrades=True, ping_interval=25.0, ping_timeout=20.0,
                           max_payload=1000)
    assert eio.parse_open(text[1:]) == eio.Handshake("abc", ("websocket",), 25.0, 20.0, 1000)
    bare = eio.open_packet("s", upgrades=False, ping_interval=1.5, ping_timeout=2, max_payload=9)
    assert eio.parse_open(bare[1:]).upgrades == ()


@pytest.mark.parametrize("data", [
    "", "nope", "[]", '{"sid":""}', '{"upgrades":[]}',
    '{"sid":"a","upgrades":"websocket","pingInterval":1,"pingTimeout":1,"maxPayload":1}',
    '{"sid":"a","upgrades":[],"pingInterval":"1","pingTimeout":1,"maxPayload":1}',
    '{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":true,"maxPayload":1}',
    '{"sid":"a","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":-1}',
])
def test_parse_open_refuses_malformed_handshakes(data: str) -> None:
    with pytest.raises(ProtocolError):
        eio.parse_open(data)


# -- inbound transitions ---------------------------------------------------
@pytest.mark.parametrize("state", [State.POLLING, State.WEBSOCKET])
def test_message_and_close(state: State) -> None:
    s = session(websocket=state is State.WEBSOCKET)
    assert s.receive(("4", "x"), 1.0).message == "x"
    assert s.receive(("4", b"\x00"), 1.0).message == b"\x00"
    assert s.receive(("1", ""), 1.0).closed is Reason.CLIENT_CLOSE
    assert s.state is State.CLOSED
    assert s.receive(("4", "late"), 2.0).message is None  # nothing after the end


@pytest.mark.parametrize("kind", ["0", "2", "6"])
def test_packet_types_a_client_may_not_send(kind: str) -> None:
    for websocket in (False, True):
        with pytest.raises(ProtocolError):
            session(websocket).receive((kind, ""), 0.0)


def test_upgrade_packet_outside_a_probe() -> None:
    with pytest.raises(ProtocolError):
        session().receive(("5", ""), 0.0)
    assert session(websocket=True).receive(("5", ""), 0.0).message is None


# -- ping / pong -------------------------------------------------------------
def test_ping_cycle() -> None:
    s = session()
    assert s.next_timer == 25.0
    assert s.on_timer(24.0) is Action.NONE  # early: nothing
    assert s.on_timer(25.2) is Action.SEND_PING and s.next_timer == pytest.approx(45.2)
    s.receive(("3", ""), 30.0)
    assert not s.ping_outstanding and s.next_timer == 55.0
    assert s.on_timer(55.0) is Action.SEND_PING


def test_ping_timeout_after_grace() -> None:
    s = session()
    s.on_timer(25.0)
    assert s.on_timer(45.0) is Action.NONE  # deadline passed: a pong may be waiting unread
    assert s.next_timer == pytest.approx(45.0 + eio.PING_GRACE)
    assert s.on_timer(45.1) is Action.CLOSE_PING_TIMEOUT
    assert s.state is State.CLOSED


def test_pong_in_the_grace_keeps_the_session() -> None:
    s = session()
    s.on_timer(25.0)
    s.on_timer(45.0)
    s.receive(("3", ""), 45.05)
    assert s.on_timer(45.1) is Action.NONE and s.state is State.POLLING


def test_unsolicited_pongs_change_nothing() -> None:
    s = session()
    for _ in range(1000):
        s.receive(("3", ""), 1.0)
    assert s.next_timer == 25.0 and not s.ping_outstanding


# -- upgrade -------------------------------------------------------------------
def test_upgrade_probe_transitions() -> None:
    s = session()
    s.queue("4a")
    s.probe_opened(1.0)
    assert s.state is State.PROBING and s.upgrade_deadline == 1.0 + eio.UPGRADE_TIMEOUT
    assert s.polling
    assert s.probe_frame("2probe") is False and s.state is State.UPGRADING
    assert s.take(None) == ["4a", "6"]  # a NOOP ends the pending poll
    assert s.probe_frame("5") is True and s.state is State.WEBSOCKET and not s.polling


@pytest.mark.parametrize("frames", [["2"], ["3probe"], ["5"], ["2probe", "2probe"],
                                    ["2probe", "4x"], [b"\x00"]])
def test_failed_probe_returns_to_polling(frames: list[str | bytes]) -> None:
    s = session()
    s.probe_opened(0.0)
    with pytest.raises(ProtocolError):
        for frame in frames:
            s.probe_frame(frame)
    assert s.state is State.POLLING


def test_probe_failed_keeps_polling() -> None:
    s = session()
    s.probe_opened(0.0)
    s.probe_frame("2probe")
    s.probe_failed()
    assert s.state is State.POLLING


@pytest.mark.parametrize("state", [State.PROBING, State.UPGRADING, State.WEBSOCKET, State.CLOSED])
def test_no_second_probe(state: State) -> None:
    s = session()
    s.state = state
    with pytest.raises(ProtocolError):
        s.probe_opened(0.0)


# -- outbound queue ------------------------------------------------------------
def test_poll_takes_at_most_16() -> None:
    s = session()
    for i in range(40):
        assert s.queue(f"4{i}")
    assert len(s.take()) == eio.PACKETS_PER_POLL and s.queued == 24
    assert len(s.take(None)) == 24 and s.queued_bytes == 0


def test_queue_bounds() -> None:
    s = session()
    for _ in range(eio.MAX_QUEUED_PACKETS):
        assert s.queue("4x")
    assert not s.queue("4x")
    s.clear()
    big = "4" + "x" * (1 << 20)
    taken = 0
    while s.queue(big):
        taken += 1
    assert taken == eio.MIN_QUEUED_BYTES // (len(big) + 1)
    s.close()
    assert s.queued == 0 and s.state is State.CLOSED
