// The link to one remote peer: its exactly-once Session and the path the
// frames take now, the data channel once it is open and the server's relay
// before that or after it is lost. Mirrors peer/peer_link.py (which keeps
// its paths in peer/channel.py, webrtc_channel.py and relay_channel.py).
//
// The session is sans-I/O; this class is its owner: it writes what the
// session returns to the current path, feeds it every message from either
// path, runs its timer, and calls `resend` whenever the path changes.

import { decodeDatagram, encodeDatagram, pack } from "./framing.js";
import { Session } from "./session.js";
import { Pending } from "./requests.js";
import {
  DATA_CHANNEL_HIGH_WATER_BYTES,
  DATA_CHANNEL_LOW_WATER_BYTES,
  DATA_CHANNEL_MESSAGE_BYTES,
  LOSSY_CHANNEL_ID,
  LOSSY_CHANNEL_LABEL,
  RELAY_MESSAGE_BYTES,
} from "./constants.js";

/** Largest data-channel message we send (what every SCTP stack accepts). */
export const CHANNEL_MESSAGE_BYTES = DATA_CHANNEL_MESSAGE_BYTES;
export { RELAY_MESSAGE_BYTES };
/** Above this many bytes queued in the data channel, writers wait. */
export const CHANNEL_HIGH_WATER = DATA_CHANNEL_HIGH_WATER_BYTES;
export const CHANNEL_LOW_WATER = DATA_CHANNEL_LOW_WATER_BYTES;
/** Relay messages shrink to no less than this after a payload-too-large. */
export const MIN_RELAY_MESSAGE_BYTES = 16 * 1024;
export const RATE_LIMIT_PAUSE_MS = 250;
export const MAX_RATE_LIMIT_RETRIES = 40;

export const now = () => performance.now() / 1000;

export class PeerLink {
  /**
   * @param {object} o
   * @param {string} o.remoteId
   * @param {(bytes: Uint8Array) => Promise<unknown>} o.sendRelay  one relay request: resolves
   *   on the server's ack, rejects with the refusal's `.code` (as peer/relay_channel.py)
   * @param {(deliveries: object[]) => void} o.onDeliveries
   * @param {(path: "webrtc"|"relay") => void} o.onPath
   * @param {(err: Error) => void} o.onFailure  the remote broke the session rules
   */
  constructor(o) {
    this.remoteId = o.remoteId;
    this.sendRelay = o.sendRelay;
    this.onDeliveries = o.onDeliveries;
    this.onPath = o.onPath ?? (() => {});
    this.onFailure = o.onFailure ?? (() => {});
    this.onDatagram = o.onDatagram ?? (() => {});
    /** The unordered, unreliable channel beside the data channel (reliable: false). */
    this.lossy = null;
    this._lossyPc = null;
    this.session = new Session();
    this.channel = null;
    this.path = "relay";
    this.closed = false;
    this._timer = null;
    this._relayQueue = [];
    this._relayBusy = false;
    this._relayGeneration = 0;
    this.relayMessageBytes = RELAY_MESSAGE_BYTES;
    this._waiters = new Set();
    /** Requests sent to this peer and waiting for their answer. */
    this.requests = new Pending();
  }

  // -- writing ---------------------------------------------------------------

  /**
   * Sequence one application message (or request, or answer: `marks` is
   * {request, response, error}) and write it; throws SendBufferFull.
   */
  sendMessage(event, data, marks = {}) {
    this._write(this.session.sendMessage(event, data, now(), marks));
  }

  /** Sequence one file-transfer body and write it; throws SendBufferFull. */
  sendBody(body) {
    this._write([this.session.send(body, now())]);
  }

  _write(frames) {
    if (this.closed || !frames.length) return;
    if (this.path === "webrtc" && this.channel?.readyState === "open") {
      try {
        for (const message of pack(frames, CHANNEL_MESSAGE_BYTES)) this.channel.send(message);
      } catch (err) {
        console.warn("rtc-peer: data channel send failed, back to the relay", err);
        this.detachChannel(this.channel);
      }
    } else {
      this._relayQueue.push(...frames);
      if (!this._relayBusy) this._pumpRelay();
    }
    this._schedule();
  }

  /**
   * The relay writer: one request in flight, the next one once the server
   * acked it (the ack is the backpressure, as in peer/relay_channel.py).
   * Frames written in one turn of the event loop go out as few relays. A
   * path switch drops what is queued (the session's resend replaces it).
   */
  async _pumpRelay() {
    this._relayBusy = true;
    try {
      await Promise.resolve();
      while (this._relayQueue.length && !this.closed) {
        const generation = this._relayGeneration;
        const frames = this._relayQueue;
        this._relayQueue = [];
        for (const message of pack(frames, this.relayMessageBytes)) {
          const sent = await this._relayOne(message);
          if (!sent || generation !== this._relayGeneration || this.closed) break;
        }
      }
    } finally {
      this._relayBusy = false;
    }
  }

  /** One relay request; retried while rate-limited. False: dropped until the session resends. */
  async _relayOne(message) {
    for (let attempt = 0; attempt < MAX_RATE_LIMIT_RETRIES; attempt++) {
      try {
        await this.sendRelay(message);
        return true;
      } catch (err) {
        if (err?.code === "rate-limited" && !this.closed) {
          await sleep(RATE_LIMIT_PAUSE_MS * Math.min(attempt + 1, 4));
          continue;
        }
        if (err?.code === "payload-too-large" && this.relayMessageBytes > MIN_RELAY_MESSAGE_BYTES) {
          this.relayMessageBytes = Math.floor(this.relayMessageBytes / 2);
        }
        return false;
      }
    }
    return false;
  }

  // -- reading ---------------------------------------------------------------

  /** One message from the remote peer, from either path. */
  receive(bytes) {
    if (this.closed) return;
    let deliveries;
    try {
      deliveries = this.session.receive(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), now());
    } catch (err) {
      if (err?.name === "FrameError") {
        console.warn(`rtc-peer: bad frame from ${this.remoteId} dropped`, err);
        return;
      }
      this.onFailure(err);
      return;
    }
    this._write(this.session.poll(now()));
    this._wake();
    if (deliveries.length) this.onDeliveries(deliveries);
  }

  // -- the timer ---------------------------------------------------------------

  _schedule() {
    if (this.closed) return;
    const deadline = this.session.nextDeadline();
    clearTimeout(this._timer);
    this._timer = null;
    if (deadline === null || deadline === undefined) return;
    const delay = Math.max(0, (deadline - now()) * 1000);
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this.closed) return;
      try {
        this._write(this.session.poll(now()));
      } catch (err) {
        this.onFailure(err);
      }
      this._schedule();
    }, delay);
  }

  // -- paths -------------------------------------------------------------------

  /** The data channel is open: move to it and resend what is unacked. */
  attachChannel(channel) {
    if (this.closed) return;
    if (this.channel && this.channel !== channel) this._unhook(this.channel);
    this.channel = channel;
    channel.bufferedAmountLowThreshold = CHANNEL_LOW_WATER;
    channel.binaryType = "arraybuffer";
    channel._rtcPeerHooks = {
      message: (event) => this.receive(event.data),
      close: () => this.detachChannel(channel),
      bufferedamountlow: () => this._wake(),
    };
    for (const [name, fn] of Object.entries(channel._rtcPeerHooks)) channel.addEventListener(name, fn);
    if (this.path !== "webrtc") {
      this.path = "webrtc";
      this._dropRelayQueue();
      this._write(this.session.resend(now()));
      this.onPath("webrtc");
    }
    this._wake();
  }

  /** Open the lossy channel on `pc`, negotiated out of band (both sides do the same). */
  attachLossy(pc) {
    if (this.closed || !pc || this._lossyPc === pc) return;
    let lossy;
    try {
      lossy = pc.createDataChannel(LOSSY_CHANNEL_LABEL, {
        negotiated: true,
        id: LOSSY_CHANNEL_ID,
        ordered: false,
        maxRetransmits: 0,
      });
    } catch (err) {
      console.warn("rtc-peer: no lossy channel", err);
      return;
    }
    this.lossy?.close();
    this.lossy = lossy;
    this._lossyPc = pc;
    lossy.binaryType = "arraybuffer";
    lossy.addEventListener("message", (event) => {
      if (this.closed || !(event.data instanceof ArrayBuffer)) return;
      let datagram;
      try {
        datagram = decodeDatagram(new Uint8Array(event.data));
      } catch {
        return; // malformed: dropped, as any lost datagram
      }
      this.onDatagram(datagram);
    });
  }

  /** Send now on the lossy channel, or drop: false when it was dropped. */
  sendDatagram(datagram) {
    const encoded = encodeDatagram(datagram);
    const lossy = this.lossy;
    if (this.path !== "webrtc" || !lossy || lossy.readyState !== "open" || lossy.bufferedAmount > CHANNEL_HIGH_WATER) {
      return false;
    }
    try {
      lossy.send(encoded);
      return true;
    } catch {
      return false;
    }
  }

  /** The data channel is gone: back to the relay, resending what is unacked. */
  detachChannel(channel) {
    if (channel !== this.channel) return;
    this._unhook(channel);
    this.channel = null;
    if (this.path === "webrtc" && !this.closed) {
      this.path = "relay";
      this._dropRelayQueue();
      this._write(this.session.resend(now()));
      this.onPath("relay");
    }
    this._wake();
  }

  /** The relay path came back (signaling resumed): resend there. */
  resendOnRelay() {
    if (this.path === "relay" && !this.closed) {
      this._dropRelayQueue();
      this._write(this.session.resend(now()));
    }
  }

  _dropRelayQueue() {
    this._relayQueue = [];
    this._relayGeneration += 1;
  }

  _unhook(channel) {
    const hooks = channel._rtcPeerHooks;
    if (!hooks) return;
    for (const [name, fn] of Object.entries(hooks)) channel.removeEventListener(name, fn);
    delete channel._rtcPeerHooks;
  }

  // -- backpressure --------------------------------------------------------------

  /** True when a writer should wait before writing more. */
  get congested() {
    return this.path === "webrtc" && (this.channel?.bufferedAmount ?? 0) > CHANNEL_HIGH_WATER;
  }

  /** Resolves at the next sign of progress: an ack, a drained channel, a path change. */
  progress(timeoutMs = 1000) {
    if (this.closed) return Promise.reject(new Error("link closed"));
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(waiter, timeoutMs);
      this._waiters.add(waiter);
    });
  }

  _wake() {
    for (const waiter of [...this._waiters]) waiter();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.requests.failAll(Object.assign(new Error(`${this.remoteId} left`), { code: "unknown-peer" }));
    clearTimeout(this._timer);
    if (this.channel) this._unhook(this.channel);
    this.channel = null;
    this.lossy?.close();
    this.lossy = null;
    this._wake();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
