"""The doctor client's pure parts: its URLs and how it reads a refused CONNECT."""

from __future__ import annotations

import pytest

from signaling.doctor_client import connect_error_text, endpoint


@pytest.mark.parametrize(("url", "websocket", "sid", "expected"), [
    ("http://h:1", False, None, "http://h:1/socket.io/?EIO=4&transport=polling"),
    ("https://h/", True, None, "wss://h/socket.io/?EIO=4&transport=websocket"),
    ("http://h/base/", True, "a-b", "ws://h/base/socket.io/?EIO=4&transport=websocket&sid=a-b"),
])
def test_endpoint(url: str, websocket: bool, sid: str | None, expected: str) -> None:
    assert endpoint(url, websocket, sid) == expected


def test_connect_error_text() -> None:
    refused = {"message": "missing token", "data": {"code": "unauthorized", "message": "missing token"}}
    assert connect_error_text(refused) == "unauthorized: missing token"
    assert connect_error_text({"message": "only / is served"}) == "only / is served"
    assert connect_error_text("plain") == "plain"
