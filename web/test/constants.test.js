// The numbers both clients share: lib/constants.js against the fixture the
// Python tests also check (tests/peer/test_constants.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as c from "../static/lib/constants.js";
import * as link from "../static/lib/peer-link.js";
import * as negotiation from "../static/lib/negotiation.js";

const SHARED = JSON.parse(readFileSync(new URL("../../tests/fixtures/peer-constants.json", import.meta.url), "utf-8"));

test("JS constants match the shared fixture", () => {
  assert.equal(c.DATA_CHANNEL_HIGH_WATER_BYTES, SHARED.dataChannelHighWaterBytes);
  assert.equal(c.DATA_CHANNEL_LOW_WATER_BYTES, SHARED.dataChannelLowWaterBytes);
  assert.equal(c.DATA_CHANNEL_MESSAGE_BYTES, SHARED.dataChannelMessageBytes);
  assert.equal(c.RELAY_MESSAGE_BYTES, SHARED.relayMessageBytes);
  assert.equal(c.LOSSY_CHANNEL_LABEL, SHARED.lossyChannelLabel);
  assert.equal(c.LOSSY_CHANNEL_ID, SHARED.lossyChannelId);
  assert.equal(c.RECONNECT_DELAY_FIRST_MS, SHARED.reconnectDelayFirst * 1000);
  assert.equal(c.RECONNECT_DELAY_MAX_MS, SHARED.reconnectDelayMax * 1000);
  assert.equal(c.RECONNECT_JITTER, SHARED.reconnectJitter);
  assert.equal(c.SIGNALING_REQUEST_TIMEOUT_MS, SHARED.signalingRequestTimeout * 1000);
  assert.equal(c.SIGNALING_CONNECT_TIMEOUT_MS, SHARED.signalingConnectTimeout * 1000);
  assert.equal(c.PEER_REQUEST_TIMEOUT_MS, SHARED.peerRequestTimeout * 1000);
  assert.equal(c.MAX_ANSWERING_PER_PEER, SHARED.maxAnsweringPerPeer);
  assert.equal(c.WEBRTC_CONNECT_TIMEOUT_MS, SHARED.webrtcConnectTimeout * 1000);
  assert.equal(c.WEBRTC_RETRY_DELAY_FIRST_MS, SHARED.webrtcRetryDelayFirst * 1000);
  assert.equal(c.WEBRTC_RETRY_DELAY_MAX_MS, SHARED.webrtcRetryDelayMax * 1000);
  assert.deepEqual([...c.RESERVED_EVENTS].sort(), SHARED.reservedEvents);
});

test("the link uses the shared data-channel and relay sizes", () => {
  assert.equal(link.CHANNEL_HIGH_WATER, SHARED.dataChannelHighWaterBytes);
  assert.equal(link.CHANNEL_LOW_WATER, SHARED.dataChannelLowWaterBytes);
  assert.equal(link.CHANNEL_MESSAGE_BYTES, SHARED.dataChannelMessageBytes);
  assert.equal(link.RELAY_MESSAGE_BYTES, SHARED.relayMessageBytes);
});

test("negotiation uses the shared connect timeout and retry delays", () => {
  assert.equal(negotiation.CONNECT_TIMEOUT_MS, SHARED.webrtcConnectTimeout * 1000);
  assert.equal(negotiation.RETRY_DELAY_MS, SHARED.webrtcRetryDelayFirst * 1000);
  assert.equal(negotiation.RETRY_DELAY_MAX_MS, SHARED.webrtcRetryDelayMax * 1000);
});
