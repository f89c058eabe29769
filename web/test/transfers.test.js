// What one sender may cost a receiving browser Peer (mirrors tests/peer/test_receive_limits.py).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { safeFilename } from "../static/lib/files.js";
import { FileCancel, FileChunk, FileEnd, FileOffer, FileResult } from "../static/lib/framing.js";
import { FileTransfers, MAX_INCOMING_PER_SENDER, MAX_RECEIVE_BYTES, MAX_RECEIVE_TOTAL_BYTES } from "../static/lib/transfers.js";

/** The members of a Peer that FileTransfers uses; what it sends and raises is kept. */
function fakePeer(...peerIds) {
  const sent = new Map(peerIds.map((id) => [id, []]));
  const raised = [];
  const peer = {
    _links: new Map(peerIds.map((id) => [id, { sendBody: (body) => sent.get(id).push(body) }])),
    _whenRoom: async (_link, write) => write(),
    _raise: (event, peerId, data) => raised.push([event, peerId, data]),
  };
  return { peer, sent, raised };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const cancels = (bodies) => Object.fromEntries(bodies.filter((b) => b instanceof FileCancel).map((b) => [b.id, b.reason]));
const offer = (id, size = 3, name = "a.bin") => new FileOffer(id, name, size, 16 * 1024);

test("at most four files at once per sender; another sender has its own four", async () => {
  const { peer, sent } = fakePeer("mallory", "alice");
  const transfers = new FileTransfers(peer);
  for (let n = 0; n < MAX_INCOMING_PER_SENDER + 2; n++) transfers.receive("mallory", offer(`m${n}`));
  transfers.receive("alice", offer("a0"));
  await settle();
  assert.deepEqual(Object.keys(cancels(sent.get("mallory"))), ["m4", "m5"]);
  assert.match(cancels(sent.get("mallory")).m4, /too many files at once/);
  assert.deepEqual(cancels(sent.get("alice")), {});
  // One finished: room for one more.
  const data = new Uint8Array([1, 2, 3]);
  transfers.receive("mallory", new FileChunk("m0", 0, data));
  transfers.receive("mallory", new FileEnd("m0", createHash("sha256").update(data).digest("hex")));
  transfers.receive("mallory", offer("m6"));
  await settle();
  assert.equal(cancels(sent.get("mallory")).m6, undefined);
  assert.ok(sent.get("mallory").some((b) => b instanceof FileResult && b.ok));
});

test("1,500 offers hold at most four files", async () => {
  const { peer, sent } = fakePeer("mallory");
  const transfers = new FileTransfers(peer);
  for (let n = 0; n < 1500; n++) transfers.receive("mallory", offer(`f${n}`, 1024 * 1024));
  await settle();
  assert.equal(transfers.incoming.size, MAX_INCOMING_PER_SENDER);
  assert.equal(Object.keys(cancels(sent.get("mallory"))).length, 1500 - MAX_INCOMING_PER_SENDER);
});

test("maxFileBytes, and the memory cap without it", async () => {
  const { peer, sent } = fakePeer("s");
  const capped = new FileTransfers(peer, { maxFileBytes: 3 });
  capped.receive("s", offer("big", 4));
  capped.receive("s", offer("fits", 3));
  const plain = new FileTransfers(peer);
  plain.receive("s", offer("huge", MAX_RECEIVE_BYTES + 1));
  await settle();
  const refused = cancels(sent.get("s"));
  assert.deepEqual(Object.keys(refused).sort(), ["big", "huge"]);
  assert.match(refused.big, /over this peer's limit of 3/);
});

test("all incoming files together stay within the memory budget", async () => {
  const { peer, sent } = fakePeer("a", "b", "c");
  const transfers = new FileTransfers(peer);
  transfers.receive("a", offer("a1", MAX_RECEIVE_BYTES));
  transfers.receive("b", offer("b1", MAX_RECEIVE_BYTES));
  transfers.receive("c", offer("c1", MAX_RECEIVE_TOTAL_BYTES - 2 * MAX_RECEIVE_BYTES + 1));
  await settle();
  assert.match(cancels(sent.get("c")).c1, /not enough space/);
});

test("acceptFile decides before anything is held; one that throws refuses", async () => {
  const { peer, sent, raised } = fakePeer("s");
  const asked = [];
  const transfers = new FileTransfers(peer, {
    acceptFile: (sender, name, size) => {
      asked.push([sender, name, size]);
      if (name === "boom") throw new Error("application bug");
      return name.endsWith(".txt");
    },
  });
  const originalError = console.error;
  console.error = () => {};
  try {
    transfers.receive("s", offer("no", 5, "run.exe"));
    transfers.receive("s", offer("err", 1, "boom"));
    transfers.receive("s", offer("yes", 3, "notes.txt"));
  } finally {
    console.error = originalError;
  }
  await settle();
  assert.deepEqual(asked, [["s", "run.exe", 5], ["s", "boom", 1], ["s", "notes.txt", 3]]);
  assert.deepEqual(Object.keys(cancels(sent.get("s"))).sort(), ["err", "no"]);
  assert.deepEqual(raised.filter(([e]) => e === "file-offer").map(([, , d]) => d.id), ["yes"]);
});

test("a duplicate offer id is refused, the first goes on", async () => {
  const { peer, sent } = fakePeer("s");
  const transfers = new FileTransfers(peer);
  transfers.receive("s", offer("same"));
  transfers.receive("s", offer("same"));
  await settle();
  assert.match(cancels(sent.get("s")).same, /already arriving/);
  assert.equal(transfers.incoming.size, 1);
});

test("safe file names drop bidi and invisible characters", () => {
  for (const [name, safe] of [
    ["invoice\u202egpj.exe", "invoice_gpj.exe"],
    ["a\u2066b\u2069.txt", "a_b_.txt"],
    ["zero\u200bwidth.txt", "zero_width.txt"],
    ["bom\ufeff.txt", "bom_.txt"],
    ["line\u2028sep", "line_sep"],
    ["caf\u00e9 \u6587\u4ef6.pdf", "caf\u00e9 \u6587\u4ef6.pdf"],
  ]) {
    assert.equal(safeFilename(name), safe);
  }
});
