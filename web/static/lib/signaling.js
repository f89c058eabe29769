// The signaling client: one Socket.IO connection to the server, requests as
// promises, and rooms kept across reconnects (resume, or a fresh join).
//
// Mirrors peer/signaling_client.py. It knows the contract's events and
// nothing about WebRTC or sessions: the Peer feeds it requests and listens to
// what it raises.
//
//   const client = new SignalingClient(url, {token, reconnect});
//   client.on("signal", ({room, from, data}) => ...);
//   const ack = await client.join({room, meta, webrtc});
//   await client.signal(room, to, data);
//   client.relay(room, event, data, to);          // fire and forget
//   client.on("rejoined", ({ack, resumed}) => ...);  // after a reconnect
//   await client.close();

import { io } from "../vendor/socket.io.esm.min.js";
import {
  RECONNECT_DELAY_FIRST_MS,
  RECONNECT_DELAY_MAX_MS,
  RECONNECT_JITTER,
  SIGNALING_CONNECT_TIMEOUT_MS,
  SIGNALING_REQUEST_TIMEOUT_MS,
} from "./constants.js";

/** Reconnect backoff (lib/constants.js, shared with Python): 0.25 s doubling to 5 s, +-50 %. */
export const RECONNECT_DELAY_MS = RECONNECT_DELAY_FIRST_MS;
export { RECONNECT_DELAY_MAX_MS, RECONNECT_JITTER };
export const REQUEST_TIMEOUT_MS = SIGNALING_REQUEST_TIMEOUT_MS;

/** A request the server refused: `.code` is the contract's error code. */
export class SignalingError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "SignalingError";
    this.code = code;
    this.serverMessage = message;
  }
}

const SERVER_EVENTS = ["peer-joined", "peer-left", "peer-updated", "signal", "relay", "rejected"];

export class SignalingClient {
  /**
   * @param {string} url  the server's base URL (http://host:port)
   * @param {{token?: string|null, reconnect?: boolean}} options
   */
  constructor(url, { token = null, reconnect = true } = {}) {
    this.url = url;
    this.token = token;
    this.reconnect = reconnect;
    this.socket = null;
    this.connected = false;
    this.closed = false;
    /** room -> {meta, webrtc} of the rooms this client means to be in */
    this.rooms = new Map();
    this.peerId = null;
    this.resumeToken = null;
    this._handlers = new Map();
    this._everConnected = false;
  }

  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this._handlers.get(event)?.delete(handler);
  }

  _raise(event, ...args) {
    for (const handler of this._handlers.get(event) ?? []) {
      try {
        handler(...args);
      } catch (err) {
        console.error(`rtc-peer: ${event} handler failed`, err);
      }
    }
  }

  /** Open the connection; resolves once connected, rejects with .code on refusal. */
  connect() {
    if (this.socket) throw new Error("already connected");
    const socket = io(this.url, {
      path: "/socket.io/",
      auth: this.token ? { token: this.token } : {},
      reconnection: this.reconnect,
      reconnectionAttempts: Infinity,
      reconnectionDelay: RECONNECT_DELAY_MS,
      reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
      randomizationFactor: RECONNECT_JITTER,
      timeout: SIGNALING_CONNECT_TIMEOUT_MS,
      autoConnect: false,
    });
    this.socket = socket;
    for (const event of SERVER_EVENTS) {
      socket.on(event, (payload) => this._raise(event, payload));
    }
    socket.on("disconnect", (reason) => {
      this.connected = false;
      this._raise("disconnected", reason);
      // The server ended the session: socket.io does not retry that by itself.
      if (reason === "io server disconnect" && this.reconnect && !this.closed) {
        setTimeout(() => !this.closed && socket.connect(), RECONNECT_DELAY_MS);
      }
    });
    socket.on("connect", () => {
      this.connected = true;
      if (this._everConnected) this._rejoin();
      this._everConnected = true;
    });
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        socket.off("connect_error", onError);
        resolve();
      };
      const onError = (err) => {
        socket.off("connect", onConnect);
        socket.off("connect_error", onError);
        socket.disconnect();
        this.socket = null;
        const data = err?.data;
        reject(
          new SignalingError(data?.code ?? "connect-failed", data?.message ?? String(err?.message ?? err)),
        );
      };
      socket.once("connect", onConnect);
      socket.on("connect_error", onError);
      socket.connect();
    }).then(() => {
      // Later connect errors (while reconnecting) are only reported.
      socket.on("connect_error", (err) => {
        this._raise("reconnect-error", err);
        if (err?.data?.code === "unauthorized") this._raise("unauthorized", err.data);
      });
    });
  }

  /** Send one request and wait for its ack; rejects with SignalingError. */
  async request(event, payload) {
    if (!this.socket || !this.connected) {
      throw new SignalingError("disconnected", "not connected to the signaling server");
    }
    let ack;
    try {
      ack = await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, payload);
    } catch {
      throw new SignalingError("timeout", `no answer to ${event} in ${REQUEST_TIMEOUT_MS} ms`);
    }
    if (!ack || ack.ok !== true) {
      const error = ack?.error ?? { code: "invalid-payload", message: "malformed ack" };
      throw new SignalingError(error.code, error.message);
    }
    return ack;
  }

  async join({ room, meta = {}, webrtc = true }) {
    const ack = await this.request("join", { room, meta, webrtc });
    this.rooms.set(room, { meta, webrtc });
    this.peerId = ack.peerId;
    this.resumeToken = ack.resumeToken;
    return ack;
  }

  /** Replace this peer's meta in `room`; a later fresh join uses it too. */
  async update(room, meta) {
    await this.request("update", { room, meta });
    const opts = this.rooms.get(room);
    if (opts) opts.meta = meta;
  }

  async leave(room) {
    this.rooms.delete(room);
    return this.request("leave", { room });
  }

  signal(room, to, data) {
    return this.request("signal", { room, to, data });
  }

  /**
   * A relay that nobody waits for: resolves to the ack or to null when it
   * could not go (disconnected, refused); the caller's session resends.
   */
  relay(room, event, data, to) {
    if (!this.connected) return Promise.resolve(null);
    const payload = to === undefined || to === null ? { room, event, data } : { room, event, data, to };
    return this.request("relay", payload).catch((err) => {
      this._raise("relay-failed", err);
      return null;
    });
  }

  /** After a reconnect: resume with the token, or join every room afresh. */
  async _rejoin() {
    const rooms = [...this.rooms.entries()];
    if (!rooms.length) return;
    const [first] = rooms[0];
    try {
      const ack = await this.request("join", { room: first, resume: this.resumeToken });
      this.resumeToken = ack.resumeToken;
      this._raise("rejoined", { room: first, ack, resumed: true });
      return;
    } catch (err) {
      if (err.code !== "resume-expired") {
        this._raise("rejoin-failed", err);
        if (err.code === "disconnected" || err.code === "timeout") return; // next connect retries
        // Anything else: fall through to a fresh join.
      }
    }
    for (const [room, opts] of rooms) {
      try {
        const ack = await this.request("join", { room, meta: opts.meta, webrtc: opts.webrtc });
        this.peerId = ack.peerId;
        this.resumeToken = ack.resumeToken;
        this._raise("rejoined", { room, ack, resumed: false });
      } catch (err) {
        this._raise("rejoin-failed", err);
      }
    }
  }

  /** Leave everything on purpose: the server tells the others "left". */
  async close() {
    this.closed = true;
    this.rooms.clear();
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.connected = false;
    socket.disconnect();
  }
}
