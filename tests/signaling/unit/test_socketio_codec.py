"""The server's own Socket.IO codec agrees with python-socketio's (the peer's client)."""

from __future__ import annotations

import pytest
from socketio import packet as upstream

from signaling.backends.base import Delivery
from signaling.gateway import encode_delivery
from signaling.wire import socketio as sio


@pytest.mark.parametrize("text", [
    '2["join",{"room":"r"}]', '21["signal",{"to":"a","data":{"sdp":"v=0\\r\\n"}}]',
    '2123456["relay",{"room":"r","data":[1,2.5,null,true,"\\u00e9"]}]', '20["x"]',
    '2/,5["x",{}]',
])
def test_events_decode_as_upstream_does(text: str) -> None:
    theirs = upstream.Packet(encoded_packet=text)
    decoder = sio.Decoder(1 << 20)
    decoder.connected = True
    ours = decoder.feed(text, 0.0)
    assert isinstance(ours, sio.Event)
    assert (ours.ack_id, ours.args) == (theirs.id, theirs.data)


def test_binary_events_decode_as_upstream_does() -> None:
    header = '52-7["relay",{"data":[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]}]'
    theirs = upstream.Packet(encoded_packet=header)
    theirs.add_attachment(b"a")
    theirs.add_attachment(b"bc")
    decoder = sio.Decoder(1 << 20)
    decoder.connected = True
    assert decoder.feed(header, 0.0) is None
    assert decoder.feed(b"a", 0.0) is None
    ours = decoder.feed(b"bc", 0.0)
    assert isinstance(ours, sio.Event) and (ours.ack_id, ours.args) == (theirs.id, theirs.data)


def decoded_by_upstream(parts: str | list[str | bytes]) -> upstream.Packet:
    if isinstance(parts, str):
        return upstream.Packet(encoded_packet=parts)
    first = parts[0]
    assert isinstance(first, str)
    packet = upstream.Packet(encoded_packet=first)
    for attachment in parts[1:]:
        assert isinstance(attachment, bytes)
        packet.add_attachment(attachment)
    return packet


def test_encoded_events_and_acks_read_back_by_upstream() -> None:
    payload = {"from": "p", "room": "r", "data": {"text": "é\u2028", "n": [1, 2]}}
    for event in ("signal", "peer-joined", "relay"):
        theirs = decoded_by_upstream(encode_delivery(Delivery("x", event, payload)))
        assert (theirs.packet_type, theirs.namespace or "/", theirs.data) == (upstream.EVENT, "/", [event, payload])
    ack = decoded_by_upstream(sio.encode_ack(12, [{"ok": True}]))
    assert (ack.packet_type, ack.id, ack.data) == (upstream.ACK, 12, [{"ok": True}])
    binary = {"from": "p", "room": "r", "data": {"blob": b"\x00\x01"}}
    # Unknown (a relay kept for a resume) or known binary: walked.
    for flag in (None, True):
        theirs = decoded_by_upstream(encode_delivery(Delivery("x", "relay", binary, binary=flag)))
        assert (theirs.packet_type, theirs.data) == (upstream.BINARY_EVENT, ["relay", binary])
    error = decoded_by_upstream(sio.encode_connect_error("/x", {"message": "no"}))
    assert (error.packet_type, error.namespace, error.data) == (upstream.CONNECT_ERROR, "/x", {"message": "no"})
