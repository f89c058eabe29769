import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Ack,
  FileChunk,
  FileEnd,
  FileOffer,
  FrameError,
  MAX_PAYLOAD_BYTES,
  MessagePart,
  RELAY_EVENT,
  Sequenced,
  decodeFrames,
  encodeFrame,
  pack,
} from "../static/lib/framing.js";
import { VECTORS, frameFromVector, fromHex, toHex } from "./vectors.js";

test("relay event name matches the vectors", () => {
  assert.equal(RELAY_EVENT, VECTORS.relayEvent);
  assert.equal(RELAY_EVENT, "rtc-peer.frame");
});

for (const vector of VECTORS.frames) {
  test(`golden frame encodes to exact bytes: ${vector.name}`, () => {
    assert.equal(toHex(encodeFrame(frameFromVector(vector.frame))), vector.hex);
  });
  test(`golden frame decodes: ${vector.name}`, () => {
    assert.deepEqual(decodeFrames(fromHex(vector.hex)), [frameFromVector(vector.frame)]);
  });
}

test("golden batch decodes in order and re-encodes", () => {
  for (const batch of VECTORS.batches) {
    const frames = decodeFrames(fromHex(batch.hex));
    assert.deepEqual(frames, batch.frames.map(frameFromVector));
    assert.equal(frames.map((f) => toHex(encodeFrame(f))).join(""), batch.hex);
  }
});

for (const vector of VECTORS.invalid) {
  test(`malformed input is refused: ${vector.name}`, () => {
    assert.throws(() => decodeFrames(fromHex(vector.hex)), FrameError);
  });
}

test("decodes ArrayBuffer, Buffer and offset views alike", () => {
  const raw = fromHex(VECTORS.frames[1].hex);
  const expected = [frameFromVector(VECTORS.frames[1].frame)];
  const padded = new Uint8Array(raw.length + 5);
  padded.set(raw, 5);
  assert.deepEqual(decodeFrames(raw.buffer), expected);
  assert.deepEqual(decodeFrames(Buffer.from(raw)), expected);
  assert.deepEqual(decodeFrames(padded.subarray(5)), expected);
});

test("binary payload is byte exact", () => {
  const payload = new Uint8Array(256 * 64).map((_, i) => i % 256);
  const [frame] = decodeFrames(encodeFrame(new Sequenced(3, new MessagePart("bin", payload, true))));
  assert.deepEqual(frame.body.payload, payload);
  assert.equal(frame.body.binary, true);
});

test("header keys in any order, unknown keys ignored", () => {
  const header = new TextEncoder().encode('{"future":[1],"event":"a","seq":9}');
  const raw = new Uint8Array([1, 0, header.length, 0, 0, 0, 1, ...header, 0x31]);
  assert.deepEqual(decodeFrames(raw), [new Sequenced(9, new MessagePart("a", fromHex("31")))]);
});

test("payload limit is configurable on decode", () => {
  const raw = encodeFrame(new Sequenced(1, new FileChunk("f", 0, new Uint8Array(100))));
  assert.throws(() => decodeFrames(raw, { maxPayload: 99 }), FrameError);
});

test("encoder refuses what the decoder would", () => {
  for (const frame of [
    new Sequenced(0, new MessagePart("a", fromHex("31"))),
    new Sequenced(1, new MessagePart("", fromHex("31"))),
    new Sequenced(1, new MessagePart("a", new Uint8Array(MAX_PAYLOAD_BYTES + 1), true)),
    new Sequenced(1, new FileOffer("bad id", "a", 1, 1)),
    new Sequenced(1, new FileEnd("f", "nothex")),
    new Ack(-1),
    { ack: 1 },
  ]) {
    assert.throws(() => encodeFrame(frame), FrameError);
  }
});

test("pack groups frames up to the limit in order", () => {
  const frames = Array.from({ length: 10 }, (_, i) => encodeFrame(new Ack(i)));
  const size = frames[0].length;
  const messages = pack(frames, 3 * size);
  assert.deepEqual(messages.map((m) => m.length), [3 * size, 3 * size, 3 * size, size]);
  assert.deepEqual(
    messages.flatMap((m) => decodeFrames(m)),
    Array.from({ length: 10 }, (_, i) => new Ack(i)),
  );
  assert.equal(pack([new Uint8Array(50)], 10).length, 1);
  assert.deepEqual(pack([], 10), []);
});

test("datagram frames, as peer/framing.py", async () => {
  const { Datagram, decodeDatagram, encodeDatagram } = await import("../static/lib/framing.js");
  const encoded = encodeDatagram(new Datagram("pos", new TextEncoder().encode("[1,2]")));
  assert.equal(Buffer.from(encoded).toString("hex"), "04000f000000057b226576656e74223a22706f73227d5b312c325d");
  const back = decodeDatagram(encoded);
  assert.equal(back.event, "pos");
  assert.equal(back.binary, false);
  assert.deepEqual([...back.payload], [...new TextEncoder().encode("[1,2]")]);
  for (const bad of [encoded.subarray(0, encoded.length - 1), new Uint8Array([...encoded, 1]), new Uint8Array([1, ...encoded.subarray(1)]), new Uint8Array(0)]) {
    assert.throws(() => decodeDatagram(bad), (err) => err.name === "FrameError");
  }
});
