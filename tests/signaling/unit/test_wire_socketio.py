"""The Socket.IO core, as tables: codec, connect, events, binary assembly, malformed input."""

from __future__ import annotations

import pytest

from signaling.wire import socketio as sio
from signaling.wire.socketio import Connect, Decoder, Disconnect, Event, ProtocolError


def connected(limit: int = 1000) -> Decoder:
    d = Decoder(limit)
    d.connected = True
    return d


# -- encoding ------------------------------------------------------------------
def test_encoders() -> None:
    assert sio.encode_connect("abc") == '0{"sid":"abc"}'
    assert sio.encode_connect_error("/", {"message": "no"}) == '4{"message":"no"}'
    assert sio.encode_connect_error("/x", {"message": "no"}) == '4/x,{"message":"no"}'
    assert sio.encode_ack(7, [{"ok": True}]) == '37[{"ok":true}]'
    assert sio.encode_event(["e", {"a": 1}]) == '2["e",{"a":1}]'
    assert sio.encode_event(["e", 2**70]) == '2["e",1180591620717411303424]'


def test_binary_event_encoding() -> None:
    parts = sio.encode_event(["relay", {"data": [b"ab", {"x": b"c"}]}])
    header = ('52-["relay",{"data":[{"_placeholder":true,"num":0},'
              '{"x":{"_placeholder":true,"num":1}}]}]')
    assert parts == [header, b"ab", b"c"]
    assert sio.encode_event(["relay", {"data": 1}], binary=None) == '2["relay",{"data":1}]'


def test_client_side_encoders() -> None:
    assert sio.encode_client_connect() == "0"
    assert sio.encode_client_connect({"token": "t"}) == '0{"token":"t"}'
    assert sio.encode_event(["join", {"room": "r"}], ack_id=12) == '212["join",{"room":"r"}]'
    assert sio.encode_event(["e"], binary=False, ack_id=0) == '20["e"]'
    assert sio.encode_event(["e", b"x"], ack_id=3) == ['51-3["e",{"_placeholder":true,"num":0}]', b"x"]
    header = sio.parse('212["join",{"room":"r"}]')
    assert (header.kind, header.ack_id, header.data) == (sio.EVENT, 12, ["join", {"room": "r"}])


# -- decoding: round trips ---------------------------------------------------
def test_connect_before_anything() -> None:
    d = Decoder(1000)
    assert d.feed("0", 0.0) == Connect("/", None)
    assert d.feed('0{"token":"t"}', 0.0) == Connect("/", {"token": "t"})
    assert d.feed("0/admin,", 0.0) == Connect("/admin", None)
    assert d.feed('0/admin,{"a":1}', 0.0) == Connect("/admin", {"a": 1})


@pytest.mark.parametrize("text", ['2["x"]', "1", '21["x"]', '51-["x",{"_placeholder":true,"num":0}]'])
def test_nothing_but_connect_before_the_connect(text: str) -> None:
    with pytest.raises(ProtocolError, match="before the Socket.IO connect"):
        Decoder(1000).feed(text, 0.0)


@pytest.mark.parametrize("text,packet", [
    ('2["join",{"room":"r"}]', Event(["join", {"room": "r"}], None)),
    ('212["join"]', Event(["join"], 12)),
    ('2/,3["a"]', Event(["a"], 3)),
    ("1", Disconnect("/")),
    ("1/other,", Disconnect("/other")),
    ('2["a",1,"b",null]', Event(["a", 1, "b", None], None)),
])
def test_packets(text: str, packet: sio.Packet) -> None:
    assert connected().feed(text, 0.0) == packet


def test_binary_event_assembled() -> None:
    d = connected()
    header = '52-9["relay",{"data":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]}]'
    assert d.feed(header, 1.0) is None and d.pending_since == 1.0
    assert d.feed(b"first", 1.5) is None
    assert d.feed(b"second", 2.0) == Event(["relay", {"data": [b"second", b"first"]}], 9)
    assert d.pending_since is None


def test_a_placeholder_lookalike_is_data() -> None:
    d = connected()
    d.feed('51-["e",{"_placeholder":"yes","num":0},{"_placeholder":true,"num":0}]', 0.0)
    assert d.feed(b"x", 0.0) == Event(["e", {"_placeholder": "yes", "num": 0}, b"x"], None)


# -- malformed input, each a violation ---------------------------------------
@pytest.mark.parametrize("text", [
    "", "x", "7", "9[]", "4abc", '4{"message":"x"}', "44abc",
    "2{}", "2[]", '2[1]', '2[null,"x"]', '2[{"toString":"f"}]', '2abc["x"]',
    "2" + "9" * 101 + '["x"]', '3["x"]', '31["x"]', '61-[{"_placeholder":true,"num":0}]',
    '2["connect"]', '2["disconnect","x"]', '2["connect_error"]', '2["disconnecting"]',
    '2["newListener"]', '2["removeListener"]', "2[" + "[" * 2000, '2["a",1' + "0" * 400 + "]",
    '2/other,["x"]', '5-["x"]', '50-["x"]', '511-["x"]', '599999999-["x"]', "5x-[]",
    '51-["x",{"_placeholder":true,"num":1}]', '51-["x",{"_placeholder":true,"num":-1}]',
    '51-["x",{"_placeholder":true,"num":true}]', '51-["x",{"_placeholder":true,"num":"0"}]',
    '51-["x",{"_placeholder":true,"num":0.0}]', '51-["x",{"_placeholder":true,"num":null}]',
    '51-["connect",{"_placeholder":true,"num":0}]', '51-{"_placeholder":true,"num":0}',
    '51-["x",' + "[" * 70 + "]" * 70 + "]",
])
def test_malformed(text: str) -> None:
    with pytest.raises(ProtocolError):
        connected().feed(text, 0.0)


def test_attachment_without_header() -> None:
    with pytest.raises(ProtocolError, match="without a binary packet header"):
        connected().feed(b"x", 0.0)


def test_text_while_attachments_are_due() -> None:
    d = connected()
    d.feed('52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 0.0)
    d.feed(b"a", 0.0)
    with pytest.raises(ProtocolError, match="attachments were due"):
        d.feed('2["y"]', 0.0)


def test_attachments_counted_as_they_arrive() -> None:
    """Past max-relay-bytes + 64 KiB for one packet, the packet ends before it completes."""
    d = connected(limit=1000)
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(10))
    d.feed(f'510-["x",[{placeholders}]]', 0.0)
    chunk = b"\x00" * 30_000
    d.feed(chunk, 0.0)
    d.feed(chunk, 0.0)
    with pytest.raises(ProtocolError, match="past"):
        d.feed(chunk, 0.0)  # 90,000 bytes > 1000 + 65,536


def test_unfinished_binary_packet_is_overdue_after_10_s() -> None:
    d = connected()
    assert not d.overdue(100.0)
    d.feed('52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 5.0)
    d.feed(b"a", 6.0)
    assert not d.overdue(5.0 + sio.BINARY_DEADLINE)
    assert d.overdue(5.0 + sio.BINARY_DEADLINE + 0.01)
