import assert from "node:assert/strict";
import { test } from "node:test";
import { Ack, FileChunk, FileOffer, FrameError, MessagePart, Sequenced, encodeFrame, pack } from "../static/lib/framing.js";
import { Message, MessageTooLarge, SendBufferFull, Session, SessionError } from "../static/lib/session.js";
import { VECTORS, fromHex, toHex } from "./vectors.js";

const messages = (deliveries) => deliveries.filter((d) => d instanceof Message).map((d) => d.data);
const ack = (n) => encodeFrame(new Ack(n));

test("JSON and bytes arrive whole and in order", () => {
  const a = new Session();
  const b = new Session();
  const out = [];
  for (const data of [{ x: [1, "é", null] }, new Uint8Array([0, 255]), "text", 3.5, null]) {
    for (const frame of a.sendMessage("e", data, 0)) out.push(...b.receive(frame, 0));
  }
  assert.deepEqual(out, [
    new Message("e", { x: [1, "é", null] }),
    new Message("e", new Uint8Array([0, 255])),
    new Message("e", "text"),
    new Message("e", 3.5),
    new Message("e", null),
  ]);
});

for (const vector of VECTORS.messages) {
  test(`golden message fragments: ${vector.event}`, () => {
    const value = "bytes" in vector.data ? fromHex(vector.data.bytes) : vector.data.json;
    const frames = new Session({ fragmentBytes: vector.fragmentBytes }).sendMessage(vector.event, value, 0);
    assert.deepEqual(frames.map(toHex), vector.frames);
    const receiver = new Session();
    const got = frames.flatMap((f) => receiver.receive(f, 0));
    assert.deepEqual(got, [new Message(vector.event, value)]);
  });
}

test("fragmented message in one batch and reversed", () => {
  const payload = new Uint8Array(256 * 20).map((_, i) => i % 256);
  const frames = new Session({ fragmentBytes: 1000 }).sendMessage("big", payload, 0);
  assert.equal(frames.length, 6);
  assert.deepEqual(new Session().receive(pack(frames, 1e9)[0], 0), [new Message("big", payload)]);
  const c = new Session();
  assert.deepEqual(frames.reverse().flatMap((f) => c.receive(f, 0)), [new Message("big", payload)]);
});

test("duplicates are dropped and acked at once", () => {
  const a = new Session();
  const b = new Session({ ackDelay: 10 });
  const [frame] = a.sendMessage("e", 1, 0);
  assert.deepEqual(messages(b.receive(frame, 0)), [1]);
  assert.deepEqual(b.poll(0), []);
  assert.deepEqual(b.receive(frame, 0), []);
  assert.deepEqual(b.poll(0), [ack(1)]);
});

test("out-of-order frames wait for the gap; too far ahead is dropped", () => {
  const a = new Session();
  const frames = [0, 1, 2, 3].map((i) => a.sendMessage("e", i, 0)[0]);
  const b = new Session();
  assert.deepEqual(b.receive(frames[2], 0), []);
  assert.deepEqual(b.receive(frames[3], 0), []);
  assert.deepEqual(messages(b.receive(frames[0], 0)), [0]);
  assert.deepEqual(messages(b.receive(frames[1], 0)), [1, 2, 3]);
  assert.equal(b.delivered, 4);
  const c = new Session({ maxReorderFrames: 2 });
  c.receive(frames[3], 0);
  assert.deepEqual([0, 1, 2, 3].flatMap((i) => messages(c.receive(frames[i], 0))), [0, 1, 2, 3]);
});

test("ack policy: every n frames or after the delay", () => {
  const a = new Session();
  const frames = [0, 1, 2].map((i) => a.sendMessage("e", i, 0)[0]);
  const b = new Session({ ackEvery: 3, ackDelay: 0.5 });
  b.receive(frames[0], 1);
  assert.deepEqual(b.poll(1), []);
  assert.equal(b.nextDeadline(), 1.5);
  assert.deepEqual(b.poll(1.5), [ack(1)]);
  const c = new Session({ ackEvery: 3, ackDelay: 0.5 });
  c.receive(pack(frames, 1e9)[0], 2);
  assert.deepEqual(c.poll(2), [ack(3)]);
});

test("acks free the send buffer; a full buffer queues nothing", () => {
  const a = new Session({ maxMessageBytes: 200, maxBufferedBytes: 200 });
  a.sendMessage("e", "x".repeat(150), 0);
  assert.throws(() => a.sendMessage("e", "y".repeat(150), 0), SendBufferFull);
  assert.equal(a.unacked, 1);
  a.receive(ack(1), 0);
  assert.equal(a.bufferedBytes, 0);
  assert.equal(a.nextDeadline(), null);
  a.sendMessage("e", "y".repeat(150), 0);
  assert.equal(a.unacked, 1);
});

test("too large and non-JSON data are refused", () => {
  const a = new Session({ maxMessageBytes: 10 });
  assert.throws(() => a.sendMessage("e", new Uint8Array(11), 0), MessageTooLarge);
  assert.throws(() => a.sendMessage("e", NaN, 0), TypeError);
  assert.throws(() => a.sendMessage("e", undefined, 0), TypeError);
  assert.throws(() => a.sendMessage("e", 1n, 0), TypeError);
  assert.equal(a.unacked, 0);
});

test("resend gives an ack then all unacked in order", () => {
  const a = new Session();
  const frames = [0, 1, 2].map((i) => a.sendMessage("e", i, 0)[0]);
  a.receive(ack(1), 0);
  assert.deepEqual(a.resend(0), frames.slice(1));
  const b = new Session();
  b.receive(frames[0], 0);
  assert.deepEqual(b.resend(0), [ack(1)]);
  assert.deepEqual(b.poll(1), []);
});

test("retransmit after silence, with backoff", () => {
  const a = new Session({ retransmitAfter: 1 });
  const frames = a.sendMessage("e", 1, 10);
  assert.equal(a.nextDeadline(), 11);
  assert.deepEqual(a.poll(10.9), []);
  assert.deepEqual(a.poll(11), frames);
  assert.equal(a.nextDeadline(), 13);
  assert.deepEqual(a.poll(13), frames);
  a.receive(ack(1), 13.5);
  assert.equal(a.nextDeadline(), null);
});

test("an ack of an unsent seq kills the session", () => {
  const a = new Session();
  a.sendMessage("e", 1, 0);
  assert.throws(() => a.receive(ack(2), 0), SessionError);
  assert.throws(() => a.sendMessage("e", 2, 0), SessionError);
});

test("a broken message stream is a session error", () => {
  const bodies = [
    [new MessagePart("e", fromHex("7b626164"))],
    [new MessagePart("e", fromHex("31"), false, true), new MessagePart("f", fromHex("32"))],
    [new MessagePart("e", fromHex("31"), false, true), new MessagePart("e", fromHex("32"), true)],
    [new MessagePart("e", fromHex("31"), false, true), new FileChunk("f", 0, fromHex("32"))],
    [new MessagePart("e", new Uint8Array(8), true, true), new MessagePart("e", new Uint8Array(8), true)],
  ];
  for (const list of bodies) {
    const b = new Session({ maxMessageBytes: 10 });
    const data = pack(list.map((body, i) => encodeFrame(new Sequenced(i + 1, body))), 1e9)[0];
    assert.throws(() => b.receive(data, 0), SessionError);
  }
});

test("a malformed message is dropped and the session lives", () => {
  const [good] = new Session().sendMessage("e", 1, 0);
  const b = new Session();
  assert.throws(() => b.receive(pack([good, new Uint8Array([1])], 1e9)[0], 0), FrameError);
  assert.equal(b.delivered, 0);
  assert.deepEqual(messages(b.receive(good, 0)), [1]);
});

test("file bodies pass through in stream order", () => {
  const a = new Session();
  const frames = [
    ...a.sendMessage("before", 1, 0),
    a.send(new FileOffer("f", "a.txt", 2, 16384), 0),
    a.send(new FileChunk("f", 0, fromHex("6869")), 0),
    ...a.sendMessage("after", 2, 0),
  ];
  const b = new Session();
  assert.deepEqual(frames.reverse().flatMap((f) => b.receive(f, 0)), [
    new Message("before", 1),
    new FileOffer("f", "a.txt", 2, 16384),
    new FileChunk("f", 0, fromHex("6869")),
    new Message("after", 2),
  ]);
});

// A seeded in-memory link with loss and reordering, like peer/testing.py.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function channelPair({ loss = 0, reorder = 0, random }) {
  const ends = [0, 1].map(() => ({ closed: false, inFlight: [] }));
  const make = (self, other) => ({
    end: self,
    send(data) {
      if (self.closed) throw new Error("closed");
      if (random() >= loss) other.inFlight.push(data);
    },
    receive() {
      const arrived = [];
      const held = [];
      for (const data of self.inFlight) (random() < reorder ? held : arrived).push(data);
      self.inFlight = held;
      return arrived;
    },
    close() {
      for (const end of ends) {
        end.closed = true;
        end.inFlight = [];
      }
    },
  });
  return [make(ends[0], ends[1]), make(ends[1], ends[0])];
}

class End {
  constructor(relay) {
    this.session = new Session({ maxMessageBytes: 2048, maxBufferedBytes: 4096, retransmitAfter: 0.05 });
    this.relay = relay;
    this.channel = null;
    this.received = [];
  }
  write(frames) {
    const path = this.channel ?? this.relay;
    for (const message of pack(frames, 4096)) {
      if (path.end.closed) return; // stays unacked: resend or retransmission brings it
      path.send(message);
    }
  }
  switch(channel, now) {
    this.channel = channel;
    this.write(this.session.resend(now));
  }
  pump(now) {
    for (const link of this.channel ? [this.relay, this.channel] : [this.relay]) {
      for (const data of link.receive()) this.received.push(...messages(this.session.receive(data, now)));
    }
    this.write(this.session.poll(now));
  }
}

function runSwitchingStream(count, seed) {
  const random = mulberry32(seed);
  const [relayA, relayB] = channelPair({ loss: 0.05, reorder: 0.2, random });
  const a = new End(relayA);
  const b = new End(relayB);
  let nextA = 0;
  let nextB = 0;
  let switches = 0;
  let pendingB = null;
  let now = 0;
  for (let step = 0; step < 20000; step++) {
    if (a.received.length === count && b.received.length === count) break;
    now += 0.002;
    if (step % 40 === 10) {
      const [dcA, dcB] = channelPair({ loss: 0.02, reorder: 0.1, random });
      a.switch(dcA, now);
      pendingB = dcB;
      switches++;
    } else if (step % 40 === 13 && pendingB) {
      b.switch(pendingB, now);
      pendingB = null;
    } else if (step % 40 === 30 && a.channel) {
      a.channel.close();
      a.switch(null, now);
      b.switch(null, now);
      switches++;
    }
    try {
      for (; nextA < count; nextA++) a.write(a.session.sendMessage("n", nextA, now));
    } catch (err) {
      if (!(err instanceof SendBufferFull)) throw err;
    }
    try {
      for (; nextB < count; nextB++) {
        b.write(b.session.sendMessage("n", new Uint8Array([nextB >> 8, nextB & 255]), now));
      }
    } catch (err) {
      if (!(err instanceof SendBufferFull)) throw err;
    }
    a.pump(now);
    b.pump(now);
  }
  return { atB: b.received, atA: a.received, switches };
}

for (const seed of [1, 2]) {
  test(`1000 messages exactly once in order over lossy switching paths (seed ${seed})`, () => {
    const { atB, atA, switches } = runSwitchingStream(1000, seed);
    assert.ok(switches >= 6);
    assert.deepEqual(atB, Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(atA, Array.from({ length: 1000 }, (_, i) => new Uint8Array([i >> 8, i & 255])));
  });
}

test("a fragmented request and its answer keep their ids", () => {
  const a = new Session({ fragmentBytes: 4 });
  const b = new Session({ fragmentBytes: 4 });
  const frames = a.sendMessage("ask", { q: "question" }, 0, { request: 7 });
  assert.ok(frames.length > 1);
  assert.deepEqual(frames.flatMap((f) => b.receive(f, 0)), [new Message("ask", { q: "question" }, 7)]);
  const answer = b.sendMessage("ask", "oops", 0, { response: 7, error: "handler-error" });
  assert.deepEqual(answer.flatMap((f) => a.receive(f, 0)), [new Message("ask", "oops", null, 7, "handler-error")]);
});

test("fragments that disagree on the request id break the session", () => {
  const first = new Session({ fragmentBytes: 2 }).sendMessage("e", "abcdef", 0, { request: 1 })[0];
  const rest = new Session({ fragmentBytes: 2 }).sendMessage("e", "abcdef", 0, { request: 2 }).slice(1);
  const b = new Session();
  b.receive(first, 0);
  assert.throws(() => b.receive(rest[0], 0), SessionError);
});
