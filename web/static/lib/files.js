// File transfer: chunking, reassembly and SHA-256 verification.
// Mirrors peer/files.py name for name (camelCase); the message flow is drawn
// there and in docs/peer-wire.md.
//
// Sans-I/O and bounded: the sender asks for one chunk's bytes at a time
// (`nextRead`, e.g. `await file.slice(at, at + n).arrayBuffer()`), the
// receiver hands each chunk's bytes to a sink as it arrives, and both hash as
// they go. WebCrypto has no streaming digest, hence the small Sha256 below.

import { DEFAULT_CHUNK_BYTES, FileChunk, FileEnd, FileOffer, FileResult, MAX_NAME_CHARS, asBytes } from "./framing.js";

/** A file transfer failed; the transfer is over. */
export class FileTransferError extends Error {
  constructor(message) {
    super(message);
    this.name = "FileTransferError";
  }
}

/** The SHA-256 of the received bytes differs from the sender's. */
export class HashMismatch extends FileTransferError {
  constructor(message) {
    super(message);
    this.name = "HashMismatch";
  }
}

// FIPS 180-4: the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H0 = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/** Incremental SHA-256, like Python's hashlib.sha256(): update(), digest(), hexdigest(). */
export class Sha256 {
  constructor() {
    this._h = new Int32Array(H0);
    this._block = new Uint8Array(64);
    this._used = 0;
    this._length = 0;
    this._w = new Int32Array(64);
  }

  update(data) {
    const bytes = asBytes(data);
    let pos = 0;
    this._length += bytes.length;
    if (this._used) {
      pos = Math.min(64 - this._used, bytes.length);
      this._block.set(bytes.subarray(0, pos), this._used);
      this._used += pos;
      if (this._used < 64) return this;
      compress(this._h, this._w, this._block, 0);
      this._used = 0;
    }
    for (; pos + 64 <= bytes.length; pos += 64) compress(this._h, this._w, bytes, pos);
    this._block.set(bytes.subarray(pos), 0);
    this._used = bytes.length - pos;
    return this;
  }

  /** The 32-byte digest of everything so far; more updates may follow. */
  digest() {
    const copy = new Sha256();
    copy._h.set(this._h);
    copy._block.set(this._block);
    copy._used = this._used;
    const bits = this._length * 8;
    const tail = new Uint8Array((this._used < 56 ? 64 : 128) - this._used);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 2 ** 32));
    view.setUint32(tail.length - 4, bits >>> 0);
    copy.update(tail);
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    copy._h.forEach((word, i) => outView.setInt32(i * 4, word));
    return out;
  }

  hexdigest() {
    return Array.from(this.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
  }
}

// One 64-byte block at b[off..off+64) into the state h; w is scratch space.
function compress(h, w, b, off) {
  for (let i = 0; i < 16; i++, off += 4) {
    w[i] = (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = h[0];
  let bb = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  let f = h[5];
  let g = h[6];
  let hh = h[7];
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
    hh = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  h[0] += a;
  h[1] += bb;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

// Control characters, what Windows or terminals choke on, and the invisible ones
// that disguise a name: bidi controls (U+202E right-to-left override makes
// "gpj.exe" read "exe.jpg"), zero-width characters, line/paragraph separators.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f/\\:*?"<>|\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

/** A random transfer id, unique enough within one session. */
export function newFileId() {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A name that is safe to create in a download directory: drops any directory
 * part, replaces with "_" the characters Windows or terminals choke on and the
 * invisible ones that disguise a name (bidi overrides, zero-width), and never
 * returns "", "." or "..". Mirrors peer.files.safe_filename.
 */
export function safeFilename(name) {
  const base = name.split(/[/\\]/).pop();
  const cleaned = Array.from(base.replace(UNSAFE, "_").replace(/^[ .]+|[ .]+$/g, ""))
    .slice(0, MAX_NAME_CHARS)
    .join("");
  return cleaned || "file";
}

/** Produces the bodies of one outgoing file, reading nothing itself. */
export class FileSender {
  constructor(fileId, name, size, { chunkSize = DEFAULT_CHUNK_BYTES, onProgress = null } = {}) {
    this.offer = new FileOffer(fileId, name, size, chunkSize);
    this.sent = 0;
    this._index = 0;
    this._hash = new Sha256();
    this._onProgress = onProgress;
    this._digest = null;
  }

  /** How many bytes to read for the next chunk; 0 when all are sent. */
  get nextRead() {
    return Math.min(this.offer.chunkSize, this.offer.size - this.sent);
  }

  /** Wrap the next `nextRead` bytes of the file. */
  chunk(data) {
    const bytes = asBytes(data);
    if (!bytes.length || bytes.length !== this.nextRead) {
      throw new FileTransferError(`read ${bytes.length} bytes, expected ${this.nextRead}`);
    }
    const body = new FileChunk(this.offer.id, this._index, bytes.slice());
    this._index += 1;
    this.sent += bytes.length;
    this._hash.update(bytes);
    if (this._onProgress) this._onProgress(this.sent, this.offer.size);
    return body;
  }

  /** The closing body, with the SHA-256 of everything sent. */
  end() {
    if (this.nextRead) {
      throw new FileTransferError(`${this.offer.size - this.sent} bytes not sent yet`);
    }
    this._digest = this._hash.hexdigest();
    return new FileEnd(this.offer.id, this._digest);
  }

  /** Check the receiver's verdict; throws HashMismatch when it differs. */
  result(result) {
    if (this._digest === null) throw new FileTransferError("result before end");
    if (!result.ok || result.sha256 !== this._digest) {
      throw new HashMismatch(`receiver got sha256 ${result.sha256}, sent ${this._digest}`);
    }
  }
}

/** Checks, hashes and sinks the chunks of one incoming file, in order. */
export class FileReceiver {
  constructor(offer, sink, { maxSize = null, onProgress = null } = {}) {
    if (maxSize !== null && offer.size > maxSize) {
      throw new FileTransferError(`file of ${offer.size} bytes over ${maxSize}`);
    }
    this.offer = offer;
    this.received = 0;
    this._index = 0;
    this._hash = new Sha256();
    this._sink = sink;
    this._onProgress = onProgress;
  }

  /** Accept the next chunk: right index, right length, then sink it. */
  chunk(chunk) {
    const expected = Math.min(this.offer.chunkSize, this.offer.size - this.received);
    if (chunk.index !== this._index || chunk.payload.length !== expected || !expected) {
      throw new FileTransferError(
        `chunk ${chunk.index} of ${chunk.payload.length} bytes, ` +
          `expected chunk ${this._index} of ${expected}`,
      );
    }
    this._index += 1;
    this.received += expected;
    this._hash.update(chunk.payload);
    this._sink(chunk.payload);
    if (this._onProgress) this._onProgress(this.received, this.offer.size);
  }

  /** The verdict to send back; `ok` only when every byte and the hash match. */
  end(end) {
    if (this.received !== this.offer.size) {
      throw new FileTransferError(`end after ${this.received} of ${this.offer.size} bytes`);
    }
    const digest = this._hash.hexdigest();
    return new FileResult(this.offer.id, digest === end.sha256, digest);
  }
}
