// rtc-peer: the browser Peer client of the rtc-signaling server.
//
//   import { Peer } from "/static/rtc-peer.js";
//   const peer = new Peer(location.origin, "lobby", { meta: { name: "Ada" } });
//   peer.on("chat", (from, text) => console.log(from, text));
//   await peer.connect();
//   await peer.emit("chat", "hello");              // everyone else
//   await peer.sendFile(otherId, file);            // they get event "file"
//
// Messages go peer to peer on a WebRTC data channel once it is open, and
// through the server's `relay` before that, after it is lost, or when either
// side has no WebRTC; the switch is invisible: in order, exactly once.
// See docs/browser.md; the Python twin is peer/peer.py.

import { SignalingClient, SignalingError } from "./lib/signaling.js";
import { Negotiator, hasWebRTC } from "./lib/negotiation.js";
import { PeerLink } from "./lib/peer-link.js";
import { Datagram, MAX_DATAGRAM_BYTES, RELAY_EVENT, encodeDatagram } from "./lib/framing.js";
import { decodeData, encodeData } from "./lib/session.js";
import { FileTransfers } from "./lib/transfers.js";
import { RequestError } from "./lib/requests.js";
import { pathFromStats } from "./lib/path-stats.js";
import { SEALED_EVENT, SealError, Sealer } from "./lib/sealing.js";
import { MAX_ANSWERING_PER_PEER, PEER_REQUEST_TIMEOUT_MS, RESERVED_EVENTS } from "./lib/constants.js";

export { SignalingError, RequestError, RESERVED_EVENTS };

/** An application used one of the library's own event names (PEER_EVENTS). */
export class ReservedEventError extends Error {
  constructor(event) {
    super(`"${event}" is a library event name: pick another name for application messages`);
    this.name = "ReservedEventError";
    this.code = "reserved-event";
  }
}

/**
 * Events the Peer raises itself; application events are any other name.
 * They are reserved (RESERVED_EVENTS, shared with the Python client): emit,
 * request and handle refuse them, and nothing a remote sends is raised
 * under one of them.
 */
export const PEER_EVENTS = Object.freeze([
  "peer-joined", // (peerId, info)
  "peer-left", // (peerId, reason)
  "peer-updated", // (peerId, info)     new meta
  "upgrade", // (peerId)            data channel open
  "downgrade", // (peerId)          data channel lost, relay again
  "file", // (senderId, File)      whole file arrived, SHA-256 checked (file.sha256)
  // Extras for user interfaces:
  "file-offer", // (senderId, {id, name, size})
  "file-progress", // (peerId, {id, name, size, done, direction: "send"|"receive"})
  "file-failed", // (peerId, {id, name, direction, error})
  "track", // (peerId, MediaStreamTrack, MediaStream)   remote media (calls)
  "connection-state", // (peerId, state)  RTCPeerConnection state
  "signaling", // (state)   "connected" | "reconnecting" | "resumed" | "rejoined" | "closed"
  "error", // (Error)
]);

export class Peer {
  /**
   * @param {string} serverUrl  e.g. location.origin
   * @param {string} room
   * @param {object} [options]
   * @param {object} [options.meta]        shown to the others (<= 1 KiB JSON)
   * @param {boolean} [options.webrtc]     false: relay only (default: true when available)
   * @param {RTCIceServer[]} [options.iceServers]  instead of the server's
   * @param {"all"|"relay"} [options.iceTransportPolicy]  "relay": through TURN only
   * @param {string} [options.token]       JWT when the server wants one
   * @param {boolean} [options.reconnect]  default true
   * @param {MediaStream} [options.stream] media to send to every peer (calls)
   * @param {boolean} [options.receiveMedia]  ask every peer for audio and video
   * @param {number} [options.maxFileBytes]  largest file accepted (default: no limit but memory's)
   * @param {Function} [options.acceptFile]  (senderId, name, size) => boolean, before any byte
   * @param {string} [options.secret]      server-blind room: peers with the same secret
   *   seal all they send through the server (docs/security.md); needs a secure context
   */
  constructor(serverUrl, room, options = {}) {
    const { meta = {}, webrtc = true, iceServers = null, token = null, reconnect = true } = options;
    this.serverUrl = serverUrl;
    this.room = room;
    this.meta = meta;
    this.webrtc = Boolean(webrtc) && hasWebRTC();
    this.iceServers = iceServers;
    this.iceTransportPolicy = options.iceTransportPolicy ?? "all";
    this.reconnect = reconnect;
    this.stream = options.stream ?? null;
    this.receiveMedia = Boolean(options.receiveMedia ?? options.stream);
    /** @type {Map<string, {peerId: string, meta: object, webrtc: boolean}>} */
    this.peers = new Map();
    this._id = null;
    this._serverIce = [];
    this._handlers = new Map();
    this._requestHandlers = new Map();
    this._answering = new Map(); // peerId -> requests whose handlers are running
    this._links = new Map();
    this._negotiators = new Map();
    this._client = new SignalingClient(serverUrl, { token, reconnect });
    this._transfers = new FileTransfers(this, { maxFileBytes: options.maxFileBytes ?? null, acceptFile: options.acceptFile ?? null });
    this._closed = false;
    this._everJoined = false;
    this._secret = options.secret ?? null;
    this._sealer = null;
    this._undecryptable = 0;
    this._inbound = Promise.resolve();
    this._sealing = Promise.resolve();
    this._wire();
  }

  /** Messages dropped in a room with a secret because they did not open. */
  get undecryptable() {
    return this._undecryptable;
  }

  /** Own peerId (null before connect). */
  get id() {
    return this._id;
  }

  /** "webrtc" when messages to that peer go on a data channel, else "relay". */
  transport(peerId) {
    return this._links.get(peerId)?.path ?? "relay";
  }

  /**
   * The path to a peer now: resolves to {transport, candidate, rttMs}.
   * `candidate` ("host", "srflx", "prflx", "relay": a TURN server relays) and
   * `rttMs` (the selected pair's current round-trip time) come from
   * getStats(); both are null while messages go through the signaling server.
   */
  async path(peerId) {
    const link = this._link(peerId);
    const pc = this._negotiators.get(peerId)?.pc;
    if (link.path !== "webrtc" || !pc) return { transport: link.path, candidate: null, rttMs: null };
    let found = { candidate: null, rttMs: null };
    try {
      found = pathFromStats(await pc.getStats());
    } catch (err) {
      console.warn("rtc-peer: getStats failed", err);
    }
    return { transport: this.transport(peerId), ...found };
  }

  /** RTCPeerConnection state of the pair, or "none" when it has no WebRTC. */
  connectionState(peerId) {
    return this._negotiators.get(peerId)?.state ?? "none";
  }

  /** Listen; returns a function that stops listening. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this.off(event, handler);
  }

  off(event, handler) {
    this._handlers.get(event)?.delete(handler);
  }

  _raise(event, ...args) {
    for (const handler of this._handlers.get(event) ?? []) {
      try {
        const result = handler(...args);
        if (result && typeof result.catch === "function") {
          result.catch((err) => console.error(`rtc-peer: "${event}" handler failed`, err));
        }
      } catch (err) {
        console.error(`rtc-peer: "${event}" handler failed`, err);
      }
    }
  }

  /** Connect and join the room; rejects with an Error whose .code is the contract's. */
  async connect() {
    if (this._secret !== null && !this._sealer) this._sealer = await Sealer.create(this._secret, this.room);
    await this._client.connect();
    let ack;
    try {
      ack = await this._client.join({ room: this.room, meta: this.meta, webrtc: this.webrtc });
    } catch (err) {
      await this._client.close();
      throw err;
    }
    this._joined(ack, false);
    this._raise("signaling", "connected");
    return this;
  }

  /**
   * Send an application message: `data` is a JSON value, or binary
   * (Uint8Array / ArrayBuffer / DataView). Without `to`, to everyone else.
   * Resolves once the message is queued on every path (it then arrives
   * exactly once, in order, also across path switches).
   */
  async emit(event, data, { to, reliable = true } = {}) {
    checkEvent(event);
    const payload = binaryOf(data) ?? data;
    if (!reliable) {
      this._sendDatagram(event, payload, to);
      return;
    }
    if (to !== undefined && to !== null) {
      const link = this._link(to);
      await this._whenRoom(link, () => link.sendMessage(event, payload));
      return;
    }
    for (const link of [...this._links.values()]) {
      try {
        await this._whenRoom(link, () => link.sendMessage(event, payload));
      } catch (err) {
        if (err.code !== "unknown-peer") throw err; // one who left meanwhile is skipped
      }
    }
  }

  /**
   * A lossy, unordered datagram on the second data channel: sent at once or
   * dropped (no data channel open, or its buffer full); never relayed.
   */
  _sendDatagram(event, payload, to) {
    const [bytes, binary] = encodeData(payload);
    if (bytes.length > MAX_DATAGRAM_BYTES) {
      throw Object.assign(new RangeError(`a datagram holds at most ${MAX_DATAGRAM_BYTES} bytes`), { name: "MessageTooLarge" });
    }
    const datagram = new Datagram(event, bytes, binary);
    try {
      encodeDatagram(datagram);
    } catch (err) {
      throw Object.assign(new RangeError(`datagram cannot be sent: ${err.message}`), { name: "MessageTooLarge" });
    }
    const links = to !== undefined && to !== null ? [this._link(to)] : [...this._links.values()];
    for (const link of links) link.sendDatagram(datagram);
  }

  /**
   * Ask one peer's handler for `event`; resolves to what it returned.
   * Rejects with a RequestError whose .code is "no-handler", "handler-error"
   * or "timeout" (no answer within `timeout` seconds, sending included; a
   * late answer is dropped), with .code "unknown-peer" when the peer is not
   * in the room or leaves meanwhile.
   */
  async request(peerId, event, data, { timeout = PEER_REQUEST_TIMEOUT_MS / 1000 } = {}) {
    checkEvent(event);
    const link = this._link(peerId);
    const payload = binaryOf(data) ?? data;
    const [id, answer] = link.requests.open();
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new RequestError("timeout", `no answer to "${event}" from ${peerId} in ${timeout} s`)),
        timeout * 1000,
      );
    });
    const sent = this._whenRoom(link, () => link.sendMessage(event, payload, { request: id }));
    try {
      return await Promise.race([sent.then(() => answer), expired]);
    } finally {
      clearTimeout(timer);
      link.requests.discard(id);
      answer.catch(() => {}); // settled after a timeout: nobody waits for it
    }
  }

  /**
   * Answer requests for `event` with `handler(senderId, data)` (plain or
   * async); its return value (JSON or binary) is the answer, a throw answers
   * "handler-error" with its message. One handler per event; null removes it.
   */
  handle(event, handler) {
    checkEvent(event);
    if (handler === null || handler === undefined) this._requestHandlers.delete(event);
    else this._requestHandlers.set(event, handler);
  }

  /** A request arrived: run its handler now (in order), answer when it settles. */
  async _answer(peerId, message) {
    const handler = this._requestHandlers.get(message.event);
    let outcome;
    let error = null;
    const busy = this._answering.get(peerId) ?? 0;
    if (!handler) {
      outcome = `no handler for "${message.event}"`;
      error = "no-handler";
    } else if (busy >= MAX_ANSWERING_PER_PEER) {
      // A hostile or runaway peer: bounded work in flight.
      outcome = `${busy} requests from this peer still running: wait for their answers`;
      error = "handler-error";
    } else {
      this._answering.set(peerId, busy + 1);
      try {
        outcome = await handler(peerId, message.data);
      } catch (err) {
        console.error(`rtc-peer: request handler for "${message.event}" failed`, err);
        outcome = `${err?.name ?? "Error"}: ${err?.message ?? err}`;
        error = "handler-error";
      }
      const left = (this._answering.get(peerId) ?? 1) - 1;
      if (left) this._answering.set(peerId, left);
      else this._answering.delete(peerId);
    }
    const link = this._links.get(peerId);
    if (!link) return;
    const reply = (data, code) =>
      this._whenRoom(link, () => link.sendMessage(message.event, binaryOf(data) ?? data, { response: message.request, error: code }));
    try {
      await reply(outcome === undefined ? null : outcome, error);
    } catch (err) {
      if (err instanceof TypeError) await reply(`the handler's answer cannot be sent: ${err.message}`, "handler-error").catch(() => {});
      // otherwise the peer is gone: nobody to answer
    }
  }

  /** Run `write` on `link`, waiting while its send buffer is full. */
  async _whenRoom(link, write) {
    for (;;) {
      if (link.closed) throw new SignalingError("unknown-peer", `${link.remoteId} left`);
      if (!link.congested) {
        try {
          write();
          return;
        } catch (err) {
          if (err?.name !== "SendBufferFull") throw err;
        }
      }
      await link.progress();
    }
  }

  /**
   * Send a File (or Blob, with an optional name) to one peer. Resolves to
   * {id, name, size, sha256} once the receiver confirmed the SHA-256.
   */
  sendFile(peerId, file, { name } = {}) {
    return this._transfers.send(peerId, file, name ?? file.name ?? "file");
  }

  /**
   * Replace this peer's meta (<= 1 KiB JSON); the others raise
   * "peer-updated" (peerId, info). Rejects with .code on a refusal.
   */
  async updateMeta(meta) {
    await this._client.update(this.room, meta);
    this.meta = meta;
  }

  /**
   * Send a MediaStreamTrack to every peer with WebRTC, now and later (it joins
   * `stream`). Relay-only peers, either side, get no media. The others raise
   * "track" (peerId, track, stream).
   */
  addTrack(track) {
    if (!this.stream) this.setStream(new MediaStream());
    if (this.stream.getTracks().includes(track)) return;
    this.stream.addTrack(track);
    for (const negotiator of this._negotiators.values()) negotiator.addTrack(track);
  }

  /** Stop sending a track to every peer (the track itself runs on). */
  removeTrack(track) {
    if (!this.stream?.getTracks().includes(track)) return;
    this.stream.removeTrack(track);
    for (const negotiator of this._negotiators.values()) negotiator.removeTrack(track);
  }

  /** Media to send to every peer (calls); null stops sending. */
  setStream(stream) {
    this.stream = stream;
    if (stream) this.receiveMedia = true;
    for (const negotiator of this._negotiators.values()) negotiator.setLocalStream(stream);
  }

  /** Leave the room and close every connection. */
  async close() {
    if (this._closed) return;
    this._closed = true;
    for (const peerId of [...this._links.keys()]) this._dropPeer(peerId);
    await this._client.close();
    this._raise("signaling", "closed");
  }

  // -- signaling events ---------------------------------------------------------

  _wire() {
    const c = this._client;
    c.on("peer-joined", (p) => {
      if (p.room !== this.room || p.peerId === this._id) return;
      this._addPeer(p, true);
    });
    c.on("peer-left", (p) => {
      if (p.room !== this.room || !this.peers.has(p.peerId)) return;
      this._dropPeer(p.peerId);
      this._raise("peer-left", p.peerId, p.reason);
    });
    c.on("peer-updated", (p) => {
      const info = this.peers.get(p.peerId);
      if (p.room !== this.room || !info || !p.meta || typeof p.meta !== "object") return;
      this._updateInfo(info, p.meta);
    });
    c.on("signal", (p) => {
      if (p.room !== this.room) return;
      if (!this._sealer) {
        this._negotiators.get(p.from)?.handleSignal(p.data);
        return;
      }
      this._opened(this._sealer.openSignal(p.data, p.from, this._id), p.from, (data) =>
        this._negotiators.get(p.from)?.handleSignal(data),
      );
    });
    c.on("relay", (p) => {
      if (p.room !== this.room) return;
      const bytes = binaryOf(p.data);
      if (!this._sealer) {
        if (p.event === RELAY_EVENT && bytes) this._links.get(p.from)?.receive(bytes);
        return; // anything else: a plain relay, or sealed for a room we have no secret of
      }
      const opening =
        p.event === SEALED_EVENT && bytes
          ? this._sealer.open(bytes, "relay", p.from, this._id)
          : Promise.reject(new SealError(`a "${p.event}" relay in the clear`));
      this._opened(opening, p.from, (frames) => this._links.get(p.from)?.receive(frames));
    });
    c.on("rejected", (p) => this._raise("error", new SignalingError(p.error?.code, p.error?.message)));
    c.on("disconnected", () => !this._closed && this._raise("signaling", "reconnecting"));
    c.on("rejoined", ({ ack, resumed }) => this._joined(ack, resumed));
  }

  /**
   * In a room with a secret: act on what `opening` yields, in arrival order
   * (one chain for signals and relays, as the server orders them); what does
   * not open is dropped and counted.
   */
  _opened(opening, from, act) {
    opening.catch(() => {}); // handled in the chain below
    this._inbound = this._inbound.then(async () => {
      let value;
      try {
        value = await opening;
      } catch (err) {
        this._undecryptable += 1;
        console.warn(`rtc-peer: dropped a message from ${from}: ${err.message}`);
        return;
      }
      act(value);
    });
  }

  _joined(ack, resumed) {
    this._serverIce = ack.iceServers ?? [];
    const fresh = this._id !== null && ack.peerId !== this._id;
    this._id = ack.peerId;
    if (fresh) {
      // A new peerId: to the others we are a new peer; every session restarts.
      for (const peerId of [...this._links.keys()]) this._dropLink(peerId);
    }
    const present = new Set(ack.peers.map((p) => p.peerId));
    for (const peerId of [...this.peers.keys()]) {
      if (!present.has(peerId)) {
        this._dropPeer(peerId);
        this._raise("peer-left", peerId, "disconnected");
      }
    }
    for (const info of ack.peers) {
      const known = this.peers.get(info.peerId);
      if (!known) this._addPeer({ room: this.room, ...info }, true);
      else {
        if (!this._links.has(info.peerId)) this._openLink(known);
        // Changed while we were away:
        if (JSON.stringify(info.meta ?? {}) !== JSON.stringify(known.meta)) this._updateInfo(known, info.meta ?? {});
      }
    }
    if (resumed) {
      for (const link of this._links.values()) link.resendOnRelay();
    }
    if (this._everJoined && !this._closed) this._raise("signaling", resumed ? "resumed" : "rejoined");
    this._everJoined = true;
  }

  _updateInfo(info, meta) {
    const updated = { ...info, meta };
    this.peers.set(info.peerId, updated);
    this._raise("peer-updated", info.peerId, updated);
  }

  _addPeer(p, announce) {
    const info = { peerId: p.peerId, meta: p.meta ?? {}, webrtc: p.webrtc !== false };
    this.peers.set(info.peerId, info);
    this._openLink(info);
    if (announce) this._raise("peer-joined", info.peerId, info);
  }

  _openLink(info) {
    const peerId = info.peerId;
    const link = new PeerLink({
      remoteId: peerId,
      sendRelay: async (bytes) => {
        const sealer = this._sealer;
        const [event, data] = sealer
          ? [SEALED_EVENT, await sealer.seal(bytes, "relay", this._id, peerId)]
          : [RELAY_EVENT, bytes];
        return this._client.request("relay", { room: this.room, event, data, to: peerId });
      },
      onDeliveries: (deliveries) => this._deliver(peerId, deliveries),
      onDatagram: (datagram) => {
        if (RESERVED.has(datagram.event)) return;
        let value;
        try {
          value = decodeData(datagram.payload, datagram.binary);
        } catch {
          return;
        }
        this._raise(datagram.event, peerId, value);
      },
      onPath: (path) => this._raise(path === "webrtc" ? "upgrade" : "downgrade", peerId),
      onFailure: (err) => {
        console.warn(`rtc-peer: session with ${peerId} broke, starting over`, err);
        this._raise("error", err);
        this._dropLink(peerId);
        this._openLink(info);
      },
    });
    this._links.set(peerId, link);
    if (this.webrtc && info.webrtc) {
      const negotiator = new Negotiator({
        localId: this._id,
        remoteId: peerId,
        iceServers: this.iceServers ?? this._serverIce,
        freshIceServers: this.iceServers ? null : () => this._freshIceServers(),
        iceTransportPolicy: this.iceTransportPolicy,
        sendSignal: (data) => this._sendSignal(peerId, data),
        onChannel: (channel) => {
          if (this._links.get(peerId) === link) {
            link.attachChannel(channel);
            link.attachLossy(negotiator.pc);
          }
        },
        onTrack: (track, stream) => this._raise("track", peerId, track, stream),
        onState: (state) => this._raise("connection-state", peerId, state),
        localStream: this.stream,
        receiveMedia: this.receiveMedia,
      });
      this._negotiators.set(peerId, negotiator);
      negotiator.start();
    }
  }

  /** The `ice-servers` request: TURN credentials minted now. */
  async _freshIceServers() {
    const ack = await this._client.request("ice-servers", {});
    this._serverIce = ack.iceServers ?? [];
    return this._serverIce;
  }

  /** Signals go in the order given; in a room with a secret, sealed first. */
  _sendSignal(peerId, data) {
    if (!this._sealer) return this._client.signal(this.room, peerId, data);
    const sealed = (this._sealing = this._sealing.then(() => this._sealer.sealSignal(data, this._id, peerId)));
    return sealed.then((opaque) => this._client.signal(this.room, peerId, opaque));
  }

  _dropLink(peerId) {
    this._links.get(peerId)?.close();
    this._links.delete(peerId);
    this._negotiators.get(peerId)?.close();
    this._negotiators.delete(peerId);
    this._transfers.dropPeer(peerId);
  }

  _dropPeer(peerId) {
    this._dropLink(peerId);
    this.peers.delete(peerId);
  }

  _deliver(peerId, deliveries) {
    for (const delivery of deliveries) {
      if (this._transfers.handles(delivery)) this._transfers.receive(peerId, delivery);
      else if (delivery.response !== null && delivery.response !== undefined) {
        this._links.get(peerId)?.requests.answer(delivery);
      } else if (delivery.request !== null && delivery.request !== undefined) {
        this._answer(peerId, delivery);
      } else if (RESERVED.has(delivery.event)) {
        console.warn(`rtc-peer: dropped a message from ${peerId} named like a library event: "${delivery.event}"`);
      } else this._raise(delivery.event, peerId, delivery.data);
    }
  }

  /** For lib/transfers.js: the link to a peer, or throw unknown-peer. */
  _link(peerId) {
    const link = this._links.get(peerId);
    if (!link) throw new SignalingError("unknown-peer", `${peerId} is not in ${this.room}`);
    return link;
  }
}

const RESERVED = new Set(RESERVED_EVENTS);

function checkEvent(event) {
  if (typeof event !== "string" || !event || event.length > 64) {
    throw new SignalingError("invalid-payload", "event must be 1-64 characters");
  }
  if (RESERVED.has(event)) throw new ReservedEventError(event);
}

/** Uint8Array of binary data (ArrayBuffer or a view), or null for anything else. */
function binaryOf(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}
