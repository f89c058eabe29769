// PeerLink's relay path waits for each relay's ack before the next one, as
// peer/relay_channel.py does, retries rate-limited relays, and drops what is
// queued on a path switch (the session's resend replaces it).
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeFrames } from "../static/lib/framing.js";
import { PeerLink } from "../static/lib/peer-link.js";
import { Pending, RequestError } from "../static/lib/requests.js";
import { Message } from "../static/lib/session.js";

/** A sendRelay whose acks the test gives out one by one. */
function manualRelay() {
  const calls = [];
  const sendRelay = (bytes) =>
    new Promise((resolve, reject) => calls.push({ bytes, resolve, reject }));
  return { calls, sendRelay };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function link(sendRelay) {
  return new PeerLink({ remoteId: "r", sendRelay, onDeliveries: () => {} });
}

test("one relay in flight: the next goes only after the ack", async () => {
  const relay = manualRelay();
  const l = link(relay.sendRelay);
  l.relayMessageBytes = 100; // one frame per relay
  l.sendMessage("a", "x".repeat(50));
  l.sendMessage("b", "y".repeat(50));
  await tick();
  assert.equal(relay.calls.length, 1);
  await tick();
  assert.equal(relay.calls.length, 1, "no second relay before the first is acked");
  relay.calls[0].resolve({ ok: true, delivered: 1 });
  await tick();
  assert.equal(relay.calls.length, 2);
  const seqs = relay.calls.map((c) => decodeFrames(c.bytes)[0].seq);
  assert.deepEqual(seqs, [1, 2]);
  relay.calls[1].resolve({ ok: true, delivered: 1 });
  l.close();
});

test("frames written in one turn go out as one relay", async () => {
  const relay = manualRelay();
  const l = link(relay.sendRelay);
  for (let i = 0; i < 5; i++) l.sendMessage("e", i);
  await tick();
  assert.equal(relay.calls.length, 1);
  assert.equal(decodeFrames(relay.calls[0].bytes).length, 5);
  relay.calls[0].resolve({ ok: true });
  l.close();
});

test("rate-limited relays are retried; other refusals drop until resend", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const relay = manualRelay();
  const l = link(relay.sendRelay);
  l.sendMessage("e", 1);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(relay.calls.length, 1);
  relay.calls[0].reject(Object.assign(new Error("slow down"), { code: "rate-limited" }));
  await Promise.resolve();
  await Promise.resolve();
  t.mock.timers.tick(250);
  await Promise.resolve();
  assert.equal(relay.calls.length, 2, "retried after the pause");
  assert.deepEqual(relay.calls[1].bytes, relay.calls[0].bytes);
  relay.calls[1].reject(Object.assign(new Error("too big"), { code: "payload-too-large" }));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(l.relayMessageBytes, 128 * 1024);
  l.close();
});

test("a switch to the data channel drops what the relay had queued", async () => {
  const relay = manualRelay();
  const l = link(relay.sendRelay);
  l.relayMessageBytes = 100;
  l.sendMessage("a", "x".repeat(50));
  l.sendMessage("b", "y".repeat(50));
  await tick();
  assert.equal(relay.calls.length, 1);
  const sent = [];
  const channel = new EventTarget();
  Object.assign(channel, { readyState: "open", bufferedAmount: 0, send: (m) => sent.push(m) });
  l.attachChannel(channel);
  relay.calls[0].resolve({ ok: true });
  await tick();
  assert.equal(relay.calls.length, 1, "the queued relay was dropped");
  const seqs = sent.flatMap((m) => decodeFrames(m).map((f) => f.seq));
  assert.deepEqual(seqs, [1, 2], "the session resent both on the channel");
  l.close();
});

test("Pending settles each request once; closing the link fails the rest", async () => {
  const pending = new Pending();
  const [first, answer] = pending.open();
  const [second, failed] = pending.open();
  assert.deepEqual([first, second], [1, 2]);
  assert.equal(pending.answer(new Message("e", 5, null, 1)), true);
  assert.equal(await answer, 5);
  assert.equal(pending.answer(new Message("e", 5, null, 1)), false);
  assert.equal(pending.answer(new Message("e", "boom", null, 2, "handler-error")), true);
  await assert.rejects(failed, (err) => err instanceof RequestError && err.code === "handler-error" && err.detail === "boom");
  const l = link(() => Promise.resolve());
  const [, orphan] = l.requests.open();
  l.close();
  await assert.rejects(orphan, (err) => err.code === "unknown-peer");
});
