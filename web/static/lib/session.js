// An ordered, exactly-once stream to one remote peer over a switchable path.
// Mirrors peer/session.py name for name (camelCase); the rules, the ack
// policy and the owner's duties are written there and in docs/peer-wire.md.
//
// Sans-I/O: the session never sends, reads or looks at a clock. `now` is in
// seconds (e.g. performance.now() / 1000). The owner writes what sendMessage,
// send, poll and resend return to the current path, feeds every arrived
// message to receive, and calls poll after each receive and at nextDeadline().

import {
  Ack,
  DEFAULT_CHUNK_BYTES,
  FileChunk,
  FrameError,
  MessagePart,
  Sequenced,
  asBytes,
  decodeFrames,
  encodeFrame,
} from "./framing.js";

/** Largest message payload (JSON text or bytes) a receiver reassembles. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
export const MAX_RETRANSMIT_AFTER = 30.0;

/** The remote peer violated the session rules; the session is unusable afterwards. */
export class SessionError extends Error {
  constructor(message) {
    super(message);
    this.name = "SessionError";
  }
}

/** Backpressure: the unacked send buffer has no room; nothing was queued. */
export class SendBufferFull extends Error {
  constructor(message) {
    super(message);
    this.name = "SendBufferFull";
  }
}

/** The message exceeds the session's maxMessageBytes. */
export class MessageTooLarge extends Error {
  constructor(message) {
    super(message);
    this.name = "MessageTooLarge";
  }
}

/**
 * An application message, whole: `data` is a JSON value or a Uint8Array.
 * `request`/`response`/`error`: see MessagePart in framing.js.
 */
export class Message {
  constructor(event, data, request = null, response = null, error = null) {
    Object.assign(this, { event, data, request, response, error });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** [payload bytes, binary?] of `data`; throws TypeError if it is neither bytes nor JSON. */
export function encodeData(data) {
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return [asBytes(data).slice(), true];
  const text = JSON.stringify(data, (key, value) => {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`${value} is not JSON`);
    }
    return value;
  });
  if (text === undefined) throw new TypeError("data is neither bytes nor a JSON value");
  return [encoder.encode(text), false];
}

/** Inverse of encodeData; throws FrameError on bad JSON. */
export function decodeData(payload, binary) {
  if (binary) return payload;
  try {
    return JSON.parse(decoder.decode(payload));
  } catch (err) {
    throw new FrameError(`message data is not JSON: ${err.message}`);
  }
}

export class Session {
  constructor({
    fragmentBytes = DEFAULT_CHUNK_BYTES,
    maxMessageBytes = MAX_MESSAGE_BYTES,
    maxBufferedBytes = 2 * MAX_MESSAGE_BYTES,
    maxReorderFrames = 1024,
    ackEvery = 16,
    ackDelay = 0.01,
    retransmitAfter = 2.0,
  } = {}) {
    if (maxMessageBytes > maxBufferedBytes) {
      throw new RangeError("maxMessageBytes must fit in maxBufferedBytes");
    }
    Object.assign(this, {
      fragmentBytes,
      maxMessageBytes,
      maxBufferedBytes,
      maxReorderFrames,
      ackEvery,
      ackDelay,
      retransmitAfter,
    });
    // sending
    this._nextSeq = 1;
    this._unacked = new Map(); // seq -> encoded frame, in seq order
    this._buffered = 0;
    this._rto = retransmitAfter;
    this._retransmitAt = null;
    // receiving
    this._delivered = 0;
    this._early = new Map();
    this._earlyBytes = 0;
    this._pendingAck = 0;
    this._ackAt = null;
    this._parts = [];
    this._partsBytes = 0;
    this._failed = null;
  }

  /** Bytes of encoded frames sent and not yet acked. */
  get bufferedBytes() {
    return this._buffered;
  }

  /** Number of frames sent and not yet acked. */
  get unacked() {
    return this._unacked.size;
  }

  /** Highest seq delivered in order (what the next ack acknowledges). */
  get delivered() {
    return this._delivered;
  }

  /**
   * Sequence one application message (fragmented as needed); returns the
   * encoded frames to write. Throws MessageTooLarge, SendBufferFull (nothing
   * queued) or TypeError for data that is neither bytes nor JSON.
   * `{request, response, error}` mark a request or its answer.
   */
  sendMessage(event, data, now, { request = null, response = null, error = null } = {}) {
    const [payload, binary] = encodeData(data);
    if (payload.length > this.maxMessageBytes) {
      throw new MessageTooLarge(`${payload.length} bytes over ${this.maxMessageBytes}`);
    }
    const step = this.fragmentBytes;
    const pieces = [];
    for (let i = 0; i < payload.length; i += step) pieces.push(payload.subarray(i, i + step));
    if (!pieces.length) pieces.push(payload);
    const last = pieces.length - 1;
    return this._sequence(
      pieces.map((p, i) => new MessagePart(event, p, binary, i < last, request, response, error)),
      now,
    );
  }

  /** Sequence one file-transfer body; returns its encoded frame. */
  send(body, now) {
    return this._sequence([body], now)[0];
  }

  /** Everything the new path needs: an ack of what arrived, then all unacked. */
  resend(now) {
    this._check();
    const frames = this._delivered ? [encodeFrame(new Ack(this._delivered))] : [];
    this._pendingAck = 0;
    this._ackAt = null;
    frames.push(...this._unacked.values());
    this._rto = this.retransmitAfter;
    this._retransmitAt = this._unacked.size ? now + this._rto : null;
    return frames;
  }

  /**
   * Process one incoming message (one or more frames) from any path. Throws
   * FrameError (nothing applied; drop the message) or SessionError (the
   * remote broke the rules; the session is dead).
   */
  receive(data, now) {
    this._check();
    const frames = decodeFrames(data);
    for (const frame of frames) {
      if (frame instanceof Ack && frame.ack >= this._nextSeq) {
        this._fail(`ack ${frame.ack} of a seq never sent`);
      }
    }
    const deliveries = [];
    for (const frame of frames) {
      if (frame instanceof Ack) this._onAck(frame.ack, now);
      else this._onSequenced(frame, now, deliveries);
    }
    return deliveries;
  }

  /** Frames that are due at `now`: an ack, or a go-back-N retransmission. */
  poll(now) {
    this._check();
    const frames = [];
    if (this._ackAt !== null && now >= this._ackAt) {
      frames.push(encodeFrame(new Ack(this._delivered)));
      this._pendingAck = 0;
      this._ackAt = null;
    }
    if (this._retransmitAt !== null && now >= this._retransmitAt) {
      frames.push(...this._unacked.values());
      this._rto = Math.min(this._rto * 2, MAX_RETRANSMIT_AFTER);
      this._retransmitAt = now + this._rto;
    }
    return frames;
  }

  /** When poll next has something to do, or null. */
  nextDeadline() {
    const times = [this._ackAt, this._retransmitAt].filter((t) => t !== null);
    return times.length ? Math.min(...times) : null;
  }

  _sequence(bodies, now) {
    this._check();
    const seq = this._nextSeq;
    const frames = bodies.map((body, i) => encodeFrame(new Sequenced(seq + i, body)));
    const size = frames.reduce((total, f) => total + f.length, 0);
    if (this._unacked.size && this._buffered + size > this.maxBufferedBytes) {
      throw new SendBufferFull(`${this._buffered} bytes unacked, ${size} more do not fit`);
    }
    frames.forEach((frame, i) => this._unacked.set(seq + i, frame));
    this._nextSeq = seq + frames.length;
    this._buffered += size;
    if (this._retransmitAt === null) this._retransmitAt = now + this._rto;
    return frames;
  }

  _onAck(ack, now) {
    let progressed = false;
    for (const [seq, frame] of this._unacked) {
      if (seq > ack) break;
      this._unacked.delete(seq);
      this._buffered -= frame.length;
      progressed = true;
    }
    if (progressed) {
      this._rto = this.retransmitAfter;
      this._retransmitAt = this._unacked.size ? now + this._rto : null;
    }
  }

  _onSequenced(frame, now, out) {
    const seq = frame.seq;
    if (seq <= this._delivered || seq - this._delivered > this.maxReorderFrames) {
      this._ackAt = now; // duplicate, or too far ahead to hold: tell the sender
      return;
    }
    if (seq > this._delivered + 1) {
      const size = payloadBytes(frame);
      if (!this._early.has(seq) && this._earlyBytes + size <= this.maxBufferedBytes) {
        this._early.set(seq, frame);
        this._earlyBytes += size;
      }
      this._ackAt = now;
      return;
    }
    this._deliver(frame, out);
    while (this._early.has(this._delivered + 1)) {
      const early = this._early.get(this._delivered + 1);
      this._early.delete(this._delivered + 1);
      this._earlyBytes -= payloadBytes(early);
      this._deliver(early, out);
    }
    if (this._pendingAck >= this.ackEvery) this._ackAt = now;
    else if (this._ackAt === null) this._ackAt = now + this.ackDelay;
  }

  _deliver(frame, out) {
    this._delivered = frame.seq;
    this._pendingAck += 1;
    const body = frame.body;
    if (!(body instanceof MessagePart)) {
      if (this._parts.length) this._fail("file frame inside a fragmented message");
      out.push(body);
      return;
    }
    const first = this._parts.length ? this._parts[0] : body;
    const keys = ["event", "binary", "request", "response", "error"];
    if (keys.some((key) => body[key] !== first[key])) {
      this._fail("message fragments disagree on event, type or request");
    }
    this._partsBytes += body.payload.length;
    if (this._partsBytes > this.maxMessageBytes) {
      this._fail(`message over ${this.maxMessageBytes} bytes`);
    }
    if (body.more) {
      this._parts.push(body);
      return;
    }
    const payload = join([...this._parts.map((p) => p.payload), body.payload], this._partsBytes);
    this._parts = [];
    this._partsBytes = 0;
    try {
      const data = decodeData(payload, body.binary);
      out.push(new Message(body.event, data, body.request, body.response, body.error));
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this._fail(err.message);
    }
  }

  _fail(reason) {
    this._failed = new SessionError(reason);
    throw this._failed;
  }

  _check() {
    if (this._failed !== null) {
      throw new SessionError(`session failed earlier: ${this._failed.message}`);
    }
  }
}

function payloadBytes(frame) {
  const body = frame.body;
  return body instanceof MessagePart || body instanceof FileChunk ? body.payload.length : 0;
}

function join(parts, size) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
