import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { FileChunk, FileEnd, FileOffer, FileResult } from "../static/lib/framing.js";
import {
  FileReceiver,
  FileSender,
  FileTransferError,
  HashMismatch,
  Sha256,
  newFileId,
  safeFilename,
} from "../static/lib/files.js";
import { SendBufferFull, Session } from "../static/lib/session.js";
import { VECTORS, fromHex } from "./vectors.js";

const bytesOf = (size, mod = 251) => new Uint8Array(size).map((_, i) => i % mod);

test("SHA-256 known vectors, in one update and byte by byte", () => {
  for (const { input, sha256 } of VECTORS.sha256) {
    const data = fromHex(input);
    assert.equal(new Sha256().update(data).hexdigest(), sha256);
    const h = new Sha256();
    for (const b of data) h.update(new Uint8Array([b]));
    assert.equal(h.hexdigest(), sha256);
  }
});

test("SHA-256 of a million 'a' in uneven updates", () => {
  const { repeat, times, sha256 } = VECTORS.sha256Repeat;
  const block = new TextEncoder().encode(repeat.repeat(1000));
  const h = new Sha256();
  let left = times;
  for (let n = 1; left > 0; n = (n * 7 + 3) % 997) {
    const take = Math.min(n, left, block.length);
    h.update(block.subarray(0, take));
    left -= take;
  }
  assert.equal(h.hexdigest(), sha256);
});

test("SHA-256 agrees with node:crypto on every length around block edges", () => {
  for (let size = 0; size < 300; size++) {
    const data = bytesOf(size, 256);
    const h = new Sha256();
    h.update(data.subarray(0, size >> 1)).update(data.subarray(size >> 1));
    assert.equal(h.hexdigest(), createHash("sha256").update(data).digest("hex"), `size ${size}`);
    assert.deepEqual(h.digest(), new Uint8Array(createHash("sha256").update(data).digest()));
  }
});

function sendAll(sender, content) {
  const chunks = [];
  while (sender.nextRead) chunks.push(sender.chunk(content.subarray(sender.sent, sender.sent + sender.nextRead)));
  return chunks;
}

for (const size of [0, 1, 1000, 1024, 5000]) {
  test(`round trip of ${size} bytes with progress`, () => {
    const content = bytesOf(size);
    const progress = [];
    const sender = new FileSender("f1", "a.bin", size, { chunkSize: 1024 });
    const parts = [];
    const receiver = new FileReceiver(sender.offer, (b) => parts.push(b), {
      onProgress: (done, total) => progress.push([done, total]),
    });
    for (const chunk of sendAll(sender, content)) {
      assert.ok(chunk.payload.length <= 1024);
      receiver.chunk(chunk);
    }
    const result = receiver.end(sender.end());
    assert.deepEqual(result, new FileResult("f1", true, createHash("sha256").update(content).digest("hex")));
    sender.result(result);
    assert.deepEqual(Buffer.concat(parts), Buffer.from(content));
    const steps = Math.ceil(size / 1024);
    assert.deepEqual(progress, Array.from({ length: steps }, (_, i) => [Math.min((i + 1) * 1024, size), size]));
  });
}

test("a corrupted chunk is detected at the end", () => {
  const content = bytesOf(2400);
  const sender = new FileSender("f", "x", content.length, { chunkSize: 1000 });
  const receiver = new FileReceiver(sender.offer, () => {});
  for (let chunk of sendAll(sender, content)) {
    if (chunk.index === 1) {
      const bad = chunk.payload.slice();
      bad[0] ^= 1;
      chunk = new FileChunk(chunk.id, 1, bad);
    }
    receiver.chunk(chunk);
  }
  const result = receiver.end(sender.end());
  assert.equal(result.ok, false);
  assert.throws(() => sender.result(result), HashMismatch);
});

test("out-of-place chunks, early end and oversize offers are refused", () => {
  for (const chunk of [
    new FileChunk("f", 1, new Uint8Array(10)),
    new FileChunk("f", 0, new Uint8Array(9)),
    new FileChunk("f", 0, new Uint8Array(11)),
  ]) {
    const receiver = new FileReceiver(new FileOffer("f", "x", 25, 10), () => {});
    assert.throws(() => receiver.chunk(chunk), FileTransferError);
  }
  const receiver = new FileReceiver(new FileOffer("f", "x", 3, 10), () => {});
  assert.throws(() => receiver.end(new FileEnd("f", "0".repeat(64))), FileTransferError);
  receiver.chunk(new FileChunk("f", 0, new Uint8Array(3)));
  assert.throws(() => receiver.chunk(new FileChunk("f", 1, new Uint8Array(0))), FileTransferError);
  assert.throws(
    () => new FileReceiver(new FileOffer("f", "x", 101, 10), () => {}, { maxSize: 100 }),
    FileTransferError,
  );
});

test("the sender checks reads and order", () => {
  const sender = new FileSender("f", "x", 5, { chunkSize: 4 });
  assert.throws(() => sender.result(new FileResult("f", true, "0".repeat(64))), FileTransferError);
  assert.throws(() => sender.chunk(new Uint8Array(3)), FileTransferError);
  assert.throws(() => sender.end(), FileTransferError);
});

test("a transfer through sessions keeps memory to the window", () => {
  const content = bytesOf(256 * 400, 256);
  const a = new Session({ maxMessageBytes: 4096, maxBufferedBytes: 4096 });
  const b = new Session({ ackEvery: 1 });
  const sender = new FileSender(newFileId(), "data.bin", content.length, { chunkSize: 1024 });
  const parts = [];
  const receivers = new Map();
  const outbox = [sender.offer];
  let ended = false;
  let peak = 0;
  const verdicts = [];
  while (!verdicts.length) {
    const wire = [];
    while (outbox.length || sender.nextRead || !ended) {
      if (!outbox.length) {
        if (sender.nextRead) outbox.push(sender.chunk(content.subarray(sender.sent, sender.sent + sender.nextRead)));
        else {
          outbox.push(sender.end());
          ended = true;
        }
      }
      try {
        wire.push(a.send(outbox[0], 0));
      } catch (err) {
        if (!(err instanceof SendBufferFull)) throw err;
        break;
      }
      outbox.shift();
    }
    peak = Math.max(peak, a.bufferedBytes);
    const back = [];
    for (const data of wire) {
      for (const body of b.receive(data, 0)) {
        if (body instanceof FileOffer) receivers.set(body.id, new FileReceiver(body, (p) => parts.push(p)));
        else if (body instanceof FileChunk) receivers.get(body.id).chunk(body);
        else if (body instanceof FileEnd) back.push(b.send(receivers.get(body.id).end(body), 0));
      }
    }
    for (const data of [...b.poll(0), ...back]) verdicts.push(...a.receive(data, 0));
  }
  assert.equal(verdicts.length, 1);
  assert.ok(verdicts[0] instanceof FileResult && verdicts[0].ok);
  sender.result(verdicts[0]);
  assert.deepEqual(Buffer.concat(parts), Buffer.from(content));
  assert.ok(peak > 3000 && peak <= 4096);
});

test("safe file names", () => {
  for (const [name, safe] of [
    ["report.pdf", "report.pdf"],
    ["../../etc/passwd", "passwd"],
    ["C:\\Users\\me\\a.txt", "a.txt"],
    ["..", "file"],
    ["", "file"],
    ["a\u0000b:c?.txt", "a_b_c_.txt"],
    ["été 😀.txt", "été 😀.txt"],
  ]) {
    assert.equal(safeFilename(name), safe);
  }
});

test("new file ids are valid and distinct", () => {
  const ids = new Set(Array.from({ length: 100 }, newFileId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
});
