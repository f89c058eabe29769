"""The numbers both clients share: peer/constants.py against the fixture web/test/ also checks."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from peer import constants, negotiation, relay_channel, signaling_client, webrtc_channel
from peer.signaling_client import backoff_delay

SHARED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "peer-constants.json").read_text("utf-8")
)


def test_python_constants_match_the_shared_fixture() -> None:
    assert constants.DATA_CHANNEL_HIGH_WATER_BYTES == SHARED["dataChannelHighWaterBytes"]
    assert constants.DATA_CHANNEL_LOW_WATER_BYTES == SHARED["dataChannelLowWaterBytes"]
    assert constants.DATA_CHANNEL_MESSAGE_BYTES == SHARED["dataChannelMessageBytes"]
    assert constants.RELAY_MESSAGE_BYTES == SHARED["relayMessageBytes"]
    assert constants.LOSSY_CHANNEL_LABEL == SHARED["lossyChannelLabel"]
    assert constants.LOSSY_CHANNEL_ID == SHARED["lossyChannelId"]
    assert constants.RECONNECT_DELAY_FIRST == SHARED["reconnectDelayFirst"]
    assert constants.RECONNECT_DELAY_MAX == SHARED["reconnectDelayMax"]
    assert constants.RECONNECT_JITTER == SHARED["reconnectJitter"]
    assert constants.SIGNALING_REQUEST_TIMEOUT == SHARED["signalingRequestTimeout"]
    assert constants.SIGNALING_CONNECT_TIMEOUT == SHARED["signalingConnectTimeout"]
    assert constants.PEER_REQUEST_TIMEOUT == SHARED["peerRequestTimeout"]
    assert constants.MAX_ANSWERING_PER_PEER == SHARED["maxAnsweringPerPeer"]
    assert constants.WEBRTC_CONNECT_TIMEOUT == SHARED["webrtcConnectTimeout"]
    assert constants.WEBRTC_RETRY_DELAY_FIRST == SHARED["webrtcRetryDelayFirst"]
    assert constants.WEBRTC_RETRY_DELAY_MAX == SHARED["webrtcRetryDelayMax"]
    assert sorted(constants.RESERVED_EVENTS) == SHARED["reservedEvents"]


def test_the_modules_use_the_shared_constants() -> None:
    assert webrtc_channel.HIGH_WATER_BYTES == SHARED["dataChannelHighWaterBytes"]
    assert webrtc_channel.LOW_WATER_BYTES == SHARED["dataChannelLowWaterBytes"]
    assert webrtc_channel.WebRTCChannel.max_message_bytes == SHARED["dataChannelMessageBytes"]
    assert relay_channel.RELAY_MESSAGE_BYTES == SHARED["relayMessageBytes"]
    assert signaling_client.REQUEST_TIMEOUT == SHARED["signalingRequestTimeout"]
    assert signaling_client.CONNECT_TIMEOUT == SHARED["signalingConnectTimeout"]
    assert negotiation.CONNECT_TIMEOUT == SHARED["webrtcConnectTimeout"]
    assert negotiation.RETRY_FIRST == SHARED["webrtcRetryDelayFirst"]
    assert negotiation.RETRY_CAP == SHARED["webrtcRetryDelayMax"]


def test_backoff_follows_socket_io_clients_rule() -> None:
    rng = random.Random(7)
    first, cap, jitter = SHARED["reconnectDelayFirst"], SHARED["reconnectDelayMax"], SHARED["reconnectJitter"]
    for attempt in range(12):
        base = first * 2**attempt
        delays = [backoff_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= min(cap, base * (1 - jitter))
        assert max(delays) <= min(cap, base * (1 + jitter))
    assert max(backoff_delay(30, rng) for _ in range(50)) == cap
