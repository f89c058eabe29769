"""The adapter's fast Socket.IO text codec agrees with python-socketio's packets."""

from __future__ import annotations

import pytest
from socketio import packet as sio_packet

from signaling.settings import Settings
from signaling.socketio_adapter import FastPacket, _default_namespace_event


@pytest.mark.parametrize("text", [
    '2["join",{"room":"r"}]', '21["signal",{"to":"a","data":{"sdp":"v=0\\r\\n"}}]',
    '2123456["relay",{"room":"r","data":[1,2.5,null,true,"\\u00e9"]}]', "2[]", '20["x"]',
])
def test_events_decode_as_upstream_does(text: str) -> None:
    upstream = FastPacket(encoded_packet=text)
    assert _default_namespace_event(text) == (upstream.id, upstream.data)


@pytest.mark.parametrize("text", ['2/chat,["x"]', '2/chat,1["x"]', "0", '31[{}]', '51-["r",{}]', "1"])
def test_other_packets_are_left_to_upstream(text: str) -> None:
    assert _default_namespace_event(text) is None


@pytest.mark.parametrize("text", ["2" + "9" * 101 + '["x"]', '2["x"', "2", "21", '2{"a":1}x'])
def test_malformed_events_raise(text: str) -> None:
    with pytest.raises(ValueError):
        _default_namespace_event(text)


def test_encoded_events_and_acks_match_upstream() -> None:
    from signaling.app import SIO_KEY, create_app

    sio = create_app(Settings())[SIO_KEY]
    payload = {"from": "p", "room": "r", "data": {"text": "é\u2028", "n": [1, 2]}}
    for event in ("signal", "peer-joined", "relay"):
        upstream = FastPacket(sio_packet.EVENT, namespace="/", data=[event, payload], binary=False)
        assert sio._encode_event(event, payload) == upstream.encode()
    binary = {"from": "p", "room": "r", "data": {"blob": b"\x00\x01"}}
    # Unknown (the default, as for a relay kept for a resume) or known binary: walked.
    for encoded in (sio._encode_event("relay", binary), sio._encode_event("relay", binary, True)):
        assert isinstance(encoded, list) and encoded[1] == b"\x00\x01"
        assert encoded[0].startswith('51-["relay"')
