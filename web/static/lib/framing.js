// The frame format both peers speak, on a data channel and through the relay.
// Mirrors peer/framing.py name for name; see docs/peer-wire.md.
//
// Every frame is, big-endian:
//
//   type u8 | header_len u16 | payload_len u32 | header | payload
//
// `header` is a compact UTF-8 JSON object, `payload` raw bytes. Frames are
// self-delimiting, so one data-channel message, or the binary `data` of one
// server `relay` request with event RELAY_EVENT, carries one or more whole
// frames back to back (`pack` groups them). The decoder accepts header keys
// in any order and ignores unknown ones; the encoder writes them in the
// documented order, so this module and the Python one produce the same bytes.

/** The relay event name that carries frames through the signaling server. */
export const RELAY_EVENT = "rtc-peer.frame";

export const MESSAGE_JSON = 0x01;
export const MESSAGE_BINARY = 0x02;
export const ACK = 0x03;
export const DATAGRAM_JSON = 0x04;
export const DATAGRAM_BINARY = 0x05;
export const FILE_OFFER = 0x10;
export const FILE_CHUNK = 0x11;
export const FILE_END = 0x12;
export const FILE_RESULT = 0x13;
export const FILE_CANCEL = 0x14;

export const PREFIX_BYTES = 7;
export const MAX_HEADER_BYTES = 4096;
export const MAX_PAYLOAD_BYTES = 65536;
/** Message fragments and file chunks: small enough for any data channel. */
export const DEFAULT_CHUNK_BYTES = 16384;
/** A datagram is one data-channel message: what every WebRTC stack accepts. */
export const MAX_DATAGRAM_BYTES = 65536;
/** Largest integer both JSON implementations hold exactly (2**53 - 1). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
export const MAX_NAME_CHARS = 255;
export const MAX_REASON_CHARS = 256;

const FILE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ERROR_CODE = /^[a-z0-9-]{1,64}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Malformed, oversized or unknown frame (network input). */
export class FrameError extends Error {
  constructor(message) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * A lossy, unordered message (emit(..., {reliable: false})): outside any
 * session, alone in one message of the lossy data channel, never
 * fragmented, acked, resent or sent through the server.
 */
export class Datagram {
  constructor(event, payload, binary = false) {
    Object.assign(this, { event, payload, binary });
  }
}

/** One lossy-channel message; throws FrameError for a bad event or one over the size limit. */
export function encodeDatagram(datagram) {
  const raw = encoder.encode(JSON.stringify({ event: datagram.event }));
  const out = new Uint8Array(PREFIX_BYTES + raw.length + datagram.payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, datagram.binary ? DATAGRAM_BINARY : DATAGRAM_JSON);
  view.setUint16(1, raw.length);
  view.setUint32(3, datagram.payload.length);
  out.set(raw, PREFIX_BYTES);
  out.set(datagram.payload, PREFIX_BYTES + raw.length);
  decodeDatagram(out);
  return out;
}

/** Inverse of encodeDatagram: exactly one datagram frame. */
export function decodeDatagram(data) {
  const bytes = asBytes(data);
  if (bytes.length < PREFIX_BYTES) throw new FrameError("truncated datagram");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = view.getUint8(0);
  const headerLen = view.getUint16(1);
  const payloadLen = view.getUint32(3);
  if (kind !== DATAGRAM_JSON && kind !== DATAGRAM_BINARY) {
    throw new FrameError(`not a datagram (type 0x${kind.toString(16).padStart(2, "0")})`);
  }
  if (headerLen > MAX_HEADER_BYTES || PREFIX_BYTES + headerLen + payloadLen !== bytes.length) {
    throw new FrameError("datagram length mismatch");
  }
  if (bytes.length > MAX_DATAGRAM_BYTES) throw new FrameError(`datagram over ${MAX_DATAGRAM_BYTES} bytes`);
  const head = parseHeader(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLen));
  return new Datagram(event(head), bytes.subarray(PREFIX_BYTES + headerLen), kind === DATAGRAM_BINARY);
}

/**
 * One fragment of an application message; `more` says others follow. A
 * request carries `request` (its id, from 1, per sender); its answer carries
 * `response` (the same id) and, when it failed, `error` (a RequestError
 * code; the payload is then the JSON text of a message). Every fragment of
 * one message carries the same keys.
 */
export class MessagePart {
  constructor(event, payload, binary = false, more = false, request = null, response = null, error = null) {
    Object.assign(this, { event, payload, binary, more, request, response, error });
  }
}

export class FileOffer {
  constructor(id, name, size, chunkSize) {
    Object.assign(this, { id, name, size, chunkSize });
  }
}

export class FileChunk {
  constructor(id, index, payload) {
    Object.assign(this, { id, index, payload });
  }
}

/** The sender's SHA-256 of the whole file, sent after the last chunk. */
export class FileEnd {
  constructor(id, sha256) {
    Object.assign(this, { id, sha256 });
  }
}

/** The receiver's verdict: `ok` and the digest it computed. */
export class FileResult {
  constructor(id, ok, sha256) {
    Object.assign(this, { id, ok, sha256 });
  }
}

export class FileCancel {
  constructor(id, reason) {
    Object.assign(this, { id, reason });
  }
}

/** A body with its place in the session's stream (`seq` from 1). */
export class Sequenced {
  constructor(seq, body) {
    Object.assign(this, { seq, body });
  }
}

/** Cumulative: every `seq` up to and including `ack` has arrived. */
export class Ack {
  constructor(ack) {
    this.ack = ack;
  }
}

/** Bytes of an ArrayBuffer, a typed array, a Buffer or a DataView, as a plain Uint8Array view. */
export function asBytes(data) {
  if (data instanceof Uint8Array && data.constructor === Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected bytes (Uint8Array, ArrayBuffer or a view)");
}

/** Encode one frame; throws FrameError for a frame the decoder would refuse. */
export function encodeFrame(frame) {
  const [kind, header, payload] = toWire(frame);
  const raw = encoder.encode(JSON.stringify(header));
  if (raw.length > MAX_HEADER_BYTES || payload.length > MAX_PAYLOAD_BYTES) {
    throw new FrameError("frame header or payload over the size limits");
  }
  const out = new Uint8Array(PREFIX_BYTES + raw.length + payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, kind);
  view.setUint16(1, raw.length);
  view.setUint32(3, payload.length);
  out.set(raw, PREFIX_BYTES);
  out.set(payload, PREFIX_BYTES + raw.length);
  decodeFrames(out);
  return out;
}

/** Decode one or more frames laid back to back; all or nothing. */
export function decodeFrames(data, { maxPayload = MAX_PAYLOAD_BYTES } = {}) {
  const bytes = asBytes(data);
  if (bytes.length === 0) throw new FrameError("empty message");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < PREFIX_BYTES) throw new FrameError("truncated frame prefix");
    const kind = view.getUint8(pos);
    const headerLen = view.getUint16(pos + 1);
    const payloadLen = view.getUint32(pos + 3);
    if (headerLen > MAX_HEADER_BYTES) {
      throw new FrameError(`header of ${headerLen} bytes over ${MAX_HEADER_BYTES}`);
    }
    if (payloadLen > maxPayload) {
      throw new FrameError(`payload of ${payloadLen} bytes over ${maxPayload}`);
    }
    const start = pos + PREFIX_BYTES;
    const end = start + headerLen + payloadLen;
    if (end > bytes.length) throw new FrameError("truncated frame");
    const header = parseHeader(bytes.subarray(start, start + headerLen));
    frames.push(fromWire(kind, header, bytes.slice(start + headerLen, end)));
    pos = end;
  }
  return frames;
}

/**
 * Group encoded frames, in order, into messages of at most `limit` bytes.
 * A frame longer than `limit` travels alone.
 */
export function pack(frames, limit) {
  const messages = [];
  let batch = [];
  let size = 0;
  const flush = () => {
    const out = new Uint8Array(size);
    let at = 0;
    for (const frame of batch) {
      out.set(frame, at);
      at += frame.length;
    }
    messages.push(out);
  };
  for (const frame of frames) {
    if (batch.length && size + frame.length > limit) {
      flush();
      batch = [];
      size = 0;
    }
    batch.push(frame);
    size += frame.length;
  }
  if (batch.length) flush();
  return messages;
}

const EMPTY = new Uint8Array(0);

function toWire(frame) {
  if (frame instanceof Ack) return [ACK, { ack: frame.ack }, EMPTY];
  if (!(frame instanceof Sequenced)) throw new FrameError("not a frame");
  const head = { seq: frame.seq };
  const body = frame.body;
  if (body instanceof MessagePart) {
    head.event = body.event;
    if (body.request !== null && body.request !== undefined) head.request = body.request;
    if (body.response !== null && body.response !== undefined) head.response = body.response;
    if (body.error !== null && body.error !== undefined) head.error = body.error;
    if (body.more) head.more = true;
    return [body.binary ? MESSAGE_BINARY : MESSAGE_JSON, head, asBytes(body.payload)];
  }
  head.id = body.id;
  if (body instanceof FileOffer) {
    Object.assign(head, { name: body.name, size: body.size, chunkSize: body.chunkSize });
    return [FILE_OFFER, head, EMPTY];
  }
  if (body instanceof FileChunk) {
    head.index = body.index;
    return [FILE_CHUNK, head, asBytes(body.payload)];
  }
  if (body instanceof FileEnd) {
    head.sha256 = body.sha256;
    return [FILE_END, head, EMPTY];
  }
  if (body instanceof FileResult) {
    Object.assign(head, { ok: body.ok, sha256: body.sha256 });
    return [FILE_RESULT, head, EMPTY];
  }
  if (body instanceof FileCancel) {
    head.reason = body.reason;
    return [FILE_CANCEL, head, EMPTY];
  }
  throw new FrameError("not a frame body");
}

function parseHeader(raw) {
  let header;
  try {
    header = JSON.parse(decoder.decode(raw));
  } catch (err) {
    throw new FrameError(`header is not JSON: ${err.message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new FrameError("header is not a JSON object");
  }
  return header;
}

function fromWire(kind, head, payload) {
  if (kind === ACK) {
    noPayload(kind, payload);
    return new Ack(int(head, "ack", 0, MAX_SEQ));
  }
  const seq = int(head, "seq", 1, MAX_SEQ);
  if (kind === MESSAGE_JSON || kind === MESSAGE_BINARY) {
    const more = "more" in head ? head.more : false;
    if (typeof more !== "boolean") throw new FrameError("'more' must be a boolean");
    const request = optionalInt(head, "request");
    const response = optionalInt(head, "response");
    const error = head.error ?? null;
    if (request !== null && response !== null) {
      throw new FrameError("a message is a request or a response, not both");
    }
    if (error !== null && (response === null || typeof error !== "string" || !ERROR_CODE.test(error))) {
      throw new FrameError("'error' must be a code of 1-64 of a-z 0-9 -, on a response only");
    }
    const binary = kind === MESSAGE_BINARY;
    return new Sequenced(seq, new MessagePart(event(head), payload, binary, more, request, response, error));
  }
  const id = str(head, "id");
  if (!FILE_ID.test(id)) throw new FrameError("file 'id' must be 1-64 of A-Z a-z 0-9 _ -");
  if (kind === FILE_CHUNK) return new Sequenced(seq, new FileChunk(id, int(head, "index", 0, MAX_SEQ), payload));
  noPayload(kind, payload);
  let body;
  if (kind === FILE_OFFER) {
    const name = str(head, "name");
    const chars = [...name].length;
    if (chars < 1 || chars > MAX_NAME_CHARS || CONTROL.test(name)) {
      throw new FrameError("file 'name' must be 1-255 characters, no control characters");
    }
    const size = int(head, "size", 0, MAX_SEQ);
    body = new FileOffer(id, name, size, int(head, "chunkSize", 1, MAX_PAYLOAD_BYTES));
  } else if (kind === FILE_END) {
    body = new FileEnd(id, sha256(head));
  } else if (kind === FILE_RESULT) {
    if (typeof head.ok !== "boolean") throw new FrameError("'ok' must be a boolean");
    body = new FileResult(id, head.ok, sha256(head));
  } else if (kind === FILE_CANCEL) {
    const reason = str(head, "reason");
    if ([...reason].length > MAX_REASON_CHARS) {
      throw new FrameError(`'reason' over ${MAX_REASON_CHARS} characters`);
    }
    body = new FileCancel(id, reason);
  } else {
    throw new FrameError(`unknown frame type 0x${kind.toString(16).padStart(2, "0")}`);
  }
  return new Sequenced(seq, body);
}

function noPayload(kind, payload) {
  if (payload.length) {
    throw new FrameError(`frame type 0x${kind.toString(16).padStart(2, "0")} carries no payload`);
  }
}

function int(head, key, low, high) {
  const value = head[key];
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new FrameError(`'${key}' must be an integer in ${low}..${high}`);
  }
  return value;
}

function optionalInt(head, key) {
  return head[key] === null || head[key] === undefined ? null : int(head, key, 1, MAX_SEQ);
}

function str(head, key) {
  const value = head[key];
  if (typeof value !== "string") throw new FrameError(`'${key}' must be a string`);
  return value;
}

function event(head) {
  const name = str(head, "event");
  const chars = [...name].length;
  if (chars < 1 || chars > 64 || CONTROL.test(name)) {
    throw new FrameError("'event' must be 1-64 characters, no control characters");
  }
  return name;
}

function sha256(head) {
  const digest = str(head, "sha256");
  if (!SHA256.test(digest)) throw new FrameError("'sha256' must be 64 lowercase hex digits");
  return digest;
}
