"""Negotiator against a browser-like remote: trickled candidates, re-offers, the offerer rule.

The remote side is a bare aiortc RTCPeerConnection driven by the test the way
a browser behaves: its SDP carries no candidates, which follow one by one as
``{type: "candidate", candidate: {candidate, sdpMid, sdpMLineIndex}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from peer.negotiation import (
    Negotiator,
    is_offerer,
    rtc_configuration,
    sdp_session,
    with_fresh_session,
)

WAIT = 10.0
CANDIDATE_LINE = re.compile(r"^a=candidate:(.*)$", re.MULTILINE)


def split_candidates(sdp: str) -> tuple[str, list[str]]:
    """The SDP without its candidates, and the candidates as browsers trickle them."""
    candidates = ["candidate:" + c.strip() for c in CANDIDATE_LINE.findall(sdp)]
    stripped = "".join(
        line for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )
    return stripped, candidates


class Wire:
    """Signals the Negotiator sends, for the test to read."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, data: dict[str, Any]) -> None:
        self.sent.put_nowait(data)

    async def next(self, kind: str) -> dict[str, Any]:
        while True:
            data = await asyncio.wait_for(self.sent.get(), WAIT)
            if data["type"] == kind:
                return data


def test_offerer_rule_is_plain_string_order() -> None:
    assert is_offerer("A", "a") and not is_offerer("a", "A")
    assert is_offerer("-x", "_x") and is_offerer("abc", "abd")


def test_fresh_session_changes_only_the_session_id() -> None:
    sdp = "v=0\r\no=- 3912345678 3912345678 IN IP4 0.0.0.0\r\ns=-\r\n"
    fresh = with_fresh_session(sdp)
    assert sdp_session(fresh) != "3912345678"
    assert fresh.replace(str(sdp_session(fresh)), "3912345678") == sdp


async def test_answerer_takes_trickled_candidates_from_a_browser_like_offerer() -> None:
    wire = Wire()
    opened: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    negotiator = Negotiator(
        "zz-python", "aa-browser",  # the remote id is lower: it offers
        configuration=rtc_configuration([]),
        send_signal=wire.send,
        on_channel=opened.put_nowait,
    )
    browser = RTCPeerConnection()
    channel = browser.createDataChannel("rtc-peer", ordered=True)
    browser_open = asyncio.Event()
    channel.on("open", browser_open.set)
    try:
        assert not negotiator.offerer
        await browser.setLocalDescription(await browser.createOffer())
        sdp, candidates = split_candidates(browser.localDescription.sdp)
        assert candidates, "aiortc gathered no host candidate"
        negotiator.signal({"type": "offer", "sdp": sdp})
        # Eight fields but no numbers where they belong: skipped, not fatal.
        negotiator.signal({"type": "candidate", "candidate": {
            "candidate": "candidate:x one udp high 127.0.0.1 port typ host", "sdpMid": "0"}})
        for candidate in candidates:
            negotiator.signal({"type": "candidate",
                               "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}})
        negotiator.signal({"type": "candidate", "candidate": {"candidate": "", "sdpMid": "0"}})
        answer = await wire.next("answer")
        await browser.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        ours = await asyncio.wait_for(opened.get(), WAIT)
        await asyncio.wait_for(browser_open.wait(), WAIT)
        assert ours.label == "rtc-peer" and ours.readyState == "open"

        got: asyncio.Queue[bytes] = asyncio.Queue()
        ours.on("message", got.put_nowait)
        channel.send(b"hello from the browser side")
        assert await asyncio.wait_for(got.get(), WAIT) == b"hello from the browser side"

        # Media requests are not for us, unknown types and bad candidates are
        # ignored, and a re-offer of the same connection is answered on it.
        before = negotiator.peer_connection
        negotiator.signal({"type": "renegotiate", "kinds": ["video"]})
        negotiator.signal({"type": "unknown-later-version"})
        negotiator.signal({"type": "candidate", "candidate": {"candidate": "garbage", "sdpMid": "0"}})
        await browser.setLocalDescription(await browser.createOffer())
        reoffer, _ = split_candidates(browser.localDescription.sdp)
        # A browser keeps its o= session id; aiortc writes the current second.
        reoffer = reoffer.replace(f" {sdp_session(reoffer)} ", f" {sdp_session(sdp)} ", 1)
        negotiator.signal({"type": "offer", "sdp": reoffer})
        answer = await wire.next("answer")
        await browser.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        assert negotiator.peer_connection is before
        channel.send(b"still the same channel")
        assert await asyncio.wait_for(got.get(), WAIT) == b"still the same channel"
    finally:
        await negotiator.close()
        await browser.close()


@contextlib.asynccontextmanager
async def answerer_facing_browser() -> AsyncIterator[
    tuple[Negotiator, Wire, asyncio.Queue[RTCDataChannel], RTCPeerConnection]
]:
    """Our answerer ("b") and a browser-like offerer ("a") with a data channel, closed after."""
    wire = Wire()
    opened: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    negotiator = Negotiator("b", "a", configuration=rtc_configuration([]),
                            send_signal=wire.send, on_channel=opened.put_nowait)
    browser = RTCPeerConnection()
    browser.createDataChannel("rtc-peer")
    try:
        yield negotiator, wire, opened, browser
    finally:
        await negotiator.close()
        await browser.close()


async def test_candidates_before_the_offer_are_kept_for_it() -> None:
    async with answerer_facing_browser() as (negotiator, wire, opened, browser):
        await browser.setLocalDescription(await browser.createOffer())
        sdp, candidates = split_candidates(browser.localDescription.sdp)
        for candidate in candidates:
            negotiator.signal({"type": "candidate",
                               "candidate": {"candidate": candidate, "sdpMLineIndex": 0}})
        negotiator.signal({"type": "offer", "sdp": sdp})
        answer = await wire.next("answer")
        await browser.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        assert (await asyncio.wait_for(opened.get(), WAIT)).readyState == "open"


async def test_offerer_sends_full_sdp_and_accepts_a_trickling_answerer() -> None:
    wire = Wire()
    opened: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    negotiator = Negotiator("aa-python", "zz-browser", configuration=rtc_configuration([]),
                            send_signal=wire.send, on_channel=opened.put_nowait)
    browser = RTCPeerConnection()
    remote_channel: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    browser.on("datachannel", remote_channel.put_nowait)
    try:
        offer = await wire.next("offer")
        assert "a=candidate:" in offer["sdp"]  # aiortc: every candidate inside
        await browser.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await browser.setLocalDescription(await browser.createAnswer())
        sdp, candidates = split_candidates(browser.localDescription.sdp)
        negotiator.signal({"type": "answer", "sdp": sdp})
        for candidate in candidates:
            negotiator.signal({"type": "candidate",
                               "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}})
        ours = await asyncio.wait_for(opened.get(), WAIT)
        theirs = await asyncio.wait_for(remote_channel.get(), WAIT)
        assert ours.label == theirs.label == "rtc-peer"

        # The answerer asks again (its channel broke): a new connection, a new session.
        negotiator.signal({"type": "renegotiate"})
        again = await wire.next("offer")
        assert sdp_session(again["sdp"]) != sdp_session(offer["sdp"])
    finally:
        await negotiator.close()
        await browser.close()


async def test_ice_that_never_connects_is_given_up_and_retried(monkeypatch: Any) -> None:
    """No candidate crosses either way: the attempt ends at the timeout, then a new offer."""
    monkeypatch.setattr("peer.negotiation.RETRY_FIRST", 0.2)
    wire = Wire()
    opened: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
    negotiator = Negotiator("aa", "zz", configuration=rtc_configuration([]),
                            send_signal=wire.send, on_channel=opened.put_nowait,
                            connect_timeout=0.5)
    browser = RTCPeerConnection()
    try:
        offer = await wire.next("offer")
        first = negotiator.peer_connection
        offer_sdp, _ = split_candidates(offer["sdp"])  # as if blocked by a firewall
        await browser.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await browser.setLocalDescription(await browser.createAnswer())
        sdp, _candidates = split_candidates(browser.localDescription.sdp)
        negotiator.signal({"type": "answer", "sdp": sdp})  # and no candidate, ever
        retry = await wire.next("offer")
        assert sdp_session(retry["sdp"]) != sdp_session(offer["sdp"])
        assert first is not None and first.connectionState == "closed"
        assert opened.empty()
    finally:
        await negotiator.close()
        await browser.close()


async def test_garbage_sdp_does_not_stop_the_negotiator() -> None:
    """An offer aiortc cannot parse is logged and dropped; the next good one still works."""
    async with answerer_facing_browser() as (negotiator, wire, opened, browser):
        negotiator.signal({"type": "offer", "sdp": "v=0\r\nthis is not SDP\r\n"})
        negotiator.signal({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio x\r\n"})
        negotiator.signal({"type": "answer", "sdp": 42})
        await browser.setLocalDescription(await browser.createOffer())
        negotiator.signal({"type": "offer", "sdp": browser.localDescription.sdp})
        answer = await wire.next("answer")
        while "m=application" not in answer["sdp"]:  # aiortc answers an empty offer emptily
            answer = await wire.next("answer")
        await browser.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        assert (await asyncio.wait_for(opened.get(), WAIT)).readyState == "open"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
async def test_close_while_gathering_leaves_no_socket_open() -> None:
    """aioice leaks the sockets of a gathering cancelled half-way: close() lets it end."""
    async def send_signal(_data: dict[str, Any]) -> None:
        return None

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    for step in range(12):
        negotiator = Negotiator(
            "a", "b", configuration=rtc_configuration([]),
            send_signal=send_signal, on_channel=lambda _channel: None,
        )
        for _ in range(step):  # stop the offer at another point of the gathering each time
            await asyncio.sleep(0)
        await negotiator.close()
    await asyncio.sleep(0.1)
    assert open_files() <= before
