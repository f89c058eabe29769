// WebRTC negotiation with one remote peer: one RTCPeerConnection, one data
// channel, and the media tracks of a call. Mirrors peer/negotiation.py.
//
// Glare-free without rollback: the side with the lower peerId (plain string
// comparison) is the offerer, always; the other side never makes an offer and
// asks for one with a {type: "renegotiate"} signal. Signals (the `data` of
// the server's `signal` request):
//
//   {type: "offer",  sdp}                 offerer -> answerer
//   {type: "answer", sdp}                 answerer -> offerer
//   {type: "candidate", candidate: {candidate, sdpMid, sdpMLineIndex}}
//                                         either way, trickled; an SDP may
//                                         also carry all its candidates inside
//   {type: "renegotiate"}                 answerer -> offerer: "I have no
//                                         working connection to you": the
//                                         offerer starts a new one
//   {type: "renegotiate", kinds: ["audio"|"video", ...]}
//                                         answerer -> offerer: "offer again on
//                                         this connection, with room for the
//                                         media I want to send"
//
//   {type: "renegotiate", restart: true}  answerer -> offerer: "restart ICE on
//                                         this connection" (browsers only)
//
// ICE restart: browsers mark their offers and answers `iceRestart: true`. A
// connection between two browsers that goes "disconnected" (for
// DISCONNECTED_GRACE_MS) or "failed" restarts ICE on the same
// RTCPeerConnection with fresh ICE servers (the offerer calls restartIce(),
// the answerer asks it to): media and the data channel live on. With aiortc
// on the other side (no iceRestart mark: it cannot restart ICE) the offerer
// builds a new connection instead, as before, and the tracks are re-added.
// A restart that does not connect within CONNECT_TIMEOUT_MS also falls back
// to a new connection.
//
// The offerer creates the data channel (label DATA_CHANNEL_LABEL, reliable,
// ordered); the answerer takes it from `datachannel`. An offer whose o= line
// names a different session than the current remote description starts a
// new RTCPeerConnection (the offerer restarted after a failure).

import {
  WEBRTC_CONNECT_TIMEOUT_MS,
  WEBRTC_RETRY_DELAY_FIRST_MS,
  WEBRTC_RETRY_DELAY_MAX_MS,
} from "./constants.js";

export const DATA_CHANNEL_LABEL = "rtc-peer";
/** How long a pair may take to reach "connected" before it counts as failed. */
export const CONNECT_TIMEOUT_MS = WEBRTC_CONNECT_TIMEOUT_MS;
/** Delay before the offerer tries a failed pair again (doubling, capped). */
export const RETRY_DELAY_MS = WEBRTC_RETRY_DELAY_FIRST_MS;
export const RETRY_DELAY_MAX_MS = WEBRTC_RETRY_DELAY_MAX_MS;
/** How long "disconnected" may last (it often heals by itself) before an ICE restart. */
export const DISCONNECTED_GRACE_MS = 2000;

export function isOfferer(localId, remoteId) {
  return localId < remoteId;
}

/** Seconds before their expiry at which TURN credentials count as stale (peer/ice.py). */
export const ICE_REFRESH_MARGIN_S = 60;

/** True when a TURN username ("<expiry>:<peerId>") expires within the margin. */
export function expiresSoon(iceServers, nowS = Date.now() / 1000) {
  return (iceServers ?? []).some((server) => {
    const head = typeof server?.username === "string" ? server.username.split(":", 1)[0] : "";
    return /^\d+$/.test(head) && Number(head) - nowS < ICE_REFRESH_MARGIN_S;
  });
}

export function hasWebRTC() {
  return typeof globalThis.RTCPeerConnection === "function";
}

function sdpSession(sdp) {
  const match = /^o=\S+ (\S+)/m.exec(sdp ?? "");
  return match ? match[1] : null;
}

export class Negotiator {
  /**
   * @param {object} o
   * @param {string} o.localId
   * @param {string} o.remoteId
   * @param {RTCIceServer[]} o.iceServers  for the first connection
   * @param {() => Promise<RTCIceServer[]>} [o.freshIceServers]  for every later one
   *   (fresh TURN credentials: the first ones may have expired by then)
   * @param {"all"|"relay"} [o.iceTransportPolicy]
   * @param {(data: object) => Promise<unknown>} o.sendSignal
   * @param {(channel: RTCDataChannel) => void} o.onChannel  an open channel
   * @param {(track: MediaStreamTrack, stream: MediaStream) => void} o.onTrack
   * @param {(state: string) => void} o.onState  connection state changes
   * @param {MediaStream|null} o.localStream
   * @param {boolean} o.receiveMedia  ask for audio and video even when sending none
   */
  constructor(o) {
    this.localId = o.localId;
    this.remoteId = o.remoteId;
    this.iceServers = o.iceServers ?? [];
    this.freshIceServers = o.freshIceServers ?? null;
    this.iceTransportPolicy = o.iceTransportPolicy ?? "all";
    this._built = 0;
    this.sendSignal = o.sendSignal;
    this.onChannel = o.onChannel ?? (() => {});
    this.onTrack = o.onTrack ?? (() => {});
    this.onState = o.onState ?? (() => {});
    this.localStream = o.localStream ?? null;
    this.receiveMedia = Boolean(o.receiveMedia);
    this.offerer = isOfferer(this.localId, this.remoteId);
    this.pc = null;
    this.channel = null;
    this.state = "new";
    this.closed = false;
    this._makingOffer = false;
    this._offerPending = false;
    this._pendingCandidates = [];
    this._remoteSession = null;
    this._wantKinds = new Set();
    this._remoteRestarts = false;
    this._restarting = false;
    this._graceTimer = null;
    this.restarts = 0;
    this._connectTimer = null;
    this._retryTimer = null;
    this._retryDelay = RETRY_DELAY_MS;
    this._remoteStreams = new Map();
  }

  /** Begin: the offerer builds its connection and offers; the answerer waits. */
  start() {
    if (!this.offerer) return;
    void this._refreshIce().then(() => {
      if (!this.closed && !this.pc) this._newConnection();
    });
  }

  _newConnection() {
    this._dropConnection();
    this._built += 1;
    this._remoteRestarts = false; // learnt again from this connection's offer or answer
    this._restarting = false;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    this.pc = pc;
    this._pendingCandidates = [];
    this._remoteSession = null;
    this._remoteStreams.clear();
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc || !candidate || !candidate.candidate) return;
      const { sdpMid, sdpMLineIndex } = candidate;
      this._signal({ type: "candidate", candidate: { candidate: candidate.candidate, sdpMid, sdpMLineIndex } });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      this._setState(pc.connectionState);
    };
    pc.ontrack = (event) => {
      if (pc !== this.pc) return;
      let stream = event.streams[0];
      if (!stream) {
        stream = this._remoteStreams.get("default") ?? new MediaStream();
        this._remoteStreams.set("default", stream);
        stream.addTrack(event.track);
      }
      this.onTrack(event.track, stream);
    };
    pc.ondatachannel = ({ channel }) => {
      if (pc !== this.pc || channel.label !== DATA_CHANNEL_LABEL) return;
      this._useChannel(channel);
    };
    pc.onnegotiationneeded = () => {
      if (pc !== this.pc) return;
      if (this.offerer) void this._makeOffer();
      else if (pc.signalingState === "stable") this._askForOffer();
    };
    if (this.localStream) {
      for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
    }
    if (this.offerer) {
      this._useChannel(pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true }));
      this._ensureReceivers();
    }
    this._setState("connecting");
    clearTimeout(this._connectTimer);
    this._connectTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== "connected") this._setState("failed");
    }, CONNECT_TIMEOUT_MS);
    return pc;
  }

  /** Before every connection after the first (and the first when its credentials are
   * about to expire): fresh ICE servers, kept as they were when the request fails. */
  async _refreshIce() {
    if (!this.freshIceServers || (!this._built && !expiresSoon(this.iceServers))) return;
    try {
      this.iceServers = await this.freshIceServers();
    } catch (err) {
      console.warn("rtc-peer: no fresh ICE servers, using the last known", err);
    }
  }

  _useChannel(channel) {
    channel.binaryType = "arraybuffer";
    this.channel = channel;
    const opened = () => {
      if (channel === this.channel) this.onChannel(channel);
    };
    if (channel.readyState === "open") opened();
    else channel.addEventListener("open", opened, { once: true });
    channel.addEventListener("close", () => this._channelClosed(channel), { once: true });
  }

  /** A channel closed while its connection lives on: the offerer opens another. */
  _channelClosed(channel) {
    if (channel !== this.channel || this.closed) return;
    this.channel = null;
    if (!this.offerer) return;
    const pc = this.pc;
    setTimeout(() => {
      if (this.closed || pc !== this.pc || this.channel || pc.connectionState !== "connected") return;
      this._useChannel(pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true }));
    }, RETRY_DELAY_MS);
  }

  _setState(state) {
    if (this.closed || state === this.state) return;
    this.state = state;
    clearTimeout(this._graceTimer);
    if (state === "connected") {
      clearTimeout(this._connectTimer);
      this._retryDelay = RETRY_DELAY_MS;
      this._restarting = false;
    }
    this.onState(state);
    const pc = this.pc;
    const canRestart = this._remoteRestarts && !this._restarting && pc?.remoteDescription;
    if (state === "disconnected" && canRestart) {
      this._graceTimer = setTimeout(() => {
        if (pc === this.pc && this.state === "disconnected") void this.restartIce();
      }, DISCONNECTED_GRACE_MS);
    } else if (state === "failed" && canRestart) void this.restartIce();
    else if (state === "failed" && this.offerer) this._scheduleRetry();
  }

  /**
   * Restart ICE on this connection with fresh ICE servers (browsers on both
   * sides only); a new connection if it does not connect in time.
   */
  async restartIce() {
    const pc = this.pc;
    if (!pc || this.closed || !this._remoteRestarts) return;
    this._restarting = true;
    this.restarts += 1;
    await this._refreshIce();
    if (pc !== this.pc || this.closed) return;
    pc.setConfiguration({ iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy });
    if (this.offerer) pc.restartIce(); // negotiationneeded: an offer with new ICE credentials
    else void this._signal({ type: "renegotiate", restart: true });
    clearTimeout(this._connectTimer);
    this._connectTimer = setTimeout(() => {
      if (pc !== this.pc || pc.connectionState === "connected") return;
      this._remoteRestarts = false; // this time, a new connection
      this._restarting = false;
      if (this.offerer) this._scheduleRetry();
      else void this._signal({ type: "renegotiate" });
    }, CONNECT_TIMEOUT_MS);
  }

  _scheduleRetry() {
    if (this._retryTimer || this.closed) return;
    const delay = this._retryDelay;
    this._retryDelay = Math.min(this._retryDelay * 2, RETRY_DELAY_MAX_MS);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      void this._refreshIce().then(() => {
        if (!this.closed) this._newConnection();
      });
    }, delay * (0.75 + Math.random() * 0.5));
  }

  /** Transceivers so the offer has room for media the remote side sends. */
  _ensureReceivers() {
    const pc = this.pc;
    if (!pc) return;
    const kinds = new Set(this._wantKinds);
    if (this.receiveMedia) {
      kinds.add("audio");
      kinds.add("video");
    }
    for (const kind of kinds) {
      const present = pc.getTransceivers().some(
        (t) => !t.stopped && (t.receiver.track?.kind === kind || t.sender.track?.kind === kind),
      );
      if (!present) pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  async _makeOffer() {
    const pc = this.pc;
    if (!pc || this.closed) return;
    if (this._makingOffer || pc.signalingState !== "stable") {
      this._offerPending = true;
      return;
    }
    this._makingOffer = true;
    this._offerPending = false;
    try {
      this._ensureReceivers();
      await pc.setLocalDescription(await pc.createOffer());
      if (pc !== this.pc) return;
      await this._signal({ type: "offer", sdp: pc.localDescription.sdp, iceRestart: true });
    } catch (err) {
      console.warn("rtc-peer: offer failed", err);
    } finally {
      this._makingOffer = false;
    }
  }

  _askForOffer() {
    const pc = this.pc;
    const kinds = new Set();
    if (pc) {
      for (const t of pc.getTransceivers()) {
        if (t.sender.track && !t.mid) kinds.add(t.sender.track.kind);
      }
    } else if (this.localStream) {
      for (const track of this.localStream.getTracks()) kinds.add(track.kind);
    }
    // Only for media: a renegotiate without kinds asks for a new connection.
    if (kinds.size) void this._signal({ type: "renegotiate", kinds: [...kinds] });
  }

  _signal(data) {
    return Promise.resolve(this.sendSignal(data)).catch((err) => {
      console.warn("rtc-peer: signal not sent", err);
    });
  }

  /** Handle one `signal` data object from the remote peer, one after the other. */
  handleSignal(data) {
    this._signals = (this._signals ?? Promise.resolve()).then(() => this._handleSignal(data));
    return this._signals;
  }

  async _handleSignal(data) {
    if (this.closed || !data || typeof data !== "object") return;
    try {
      switch (data.type) {
        case "offer":
          if (!this.offerer) {
            await this._onOffer(data.sdp);
            this._remoteRestarts = data.iceRestart === true;
          }
          break;
        case "answer":
          if (this.offerer) {
            await this._onAnswer(data.sdp);
            this._remoteRestarts = data.iceRestart === true;
          }
          break;
        case "candidate":
          await this._onCandidate(data.candidate);
          break;
        case "renegotiate":
          if (this.offerer && data.restart === true && this._remoteRestarts && this.pc) {
            await this.restartIce();
          } else if (this.offerer) {
            const kinds = Array.isArray(data.kinds) ? data.kinds.filter((k) => k === "audio" || k === "video") : [];
            for (const kind of kinds) this._wantKinds.add(kind);
            const dead = !this.pc || ["failed", "closed"].includes(this.pc.connectionState);
            // Without kinds: "I have no connection to you", start a new one.
            if (dead || !kinds.length) {
              await this._refreshIce();
              if (!this.closed) this._newConnection();
            }
            else await this._makeOffer();
          }
          break;
        default:
          break; // unknown signal types are ignored, for later versions
      }
    } catch (err) {
      console.warn(`rtc-peer: signal ${data.type} from ${this.remoteId} failed`, err);
    }
  }

  async _onOffer(sdp) {
    const session = sdpSession(sdp);
    let pc = this.pc;
    if (!pc || pc.signalingState === "closed" || (this._remoteSession && session !== this._remoteSession)) {
      await this._refreshIce();
      if (this.closed) return;
      pc = this._newConnection();
    }
    this._remoteSession = session;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this._flushCandidates(pc);
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc !== this.pc) return;
    await this._signal({ type: "answer", sdp: pc.localDescription.sdp, iceRestart: true });
    // Tracks the offer had no room for: ask for another round.
    if (pc.getTransceivers().some((t) => t.sender.track && !t.mid)) this._askForOffer();
  }

  async _onAnswer(sdp) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== "have-local-offer") return;
    await pc.setRemoteDescription({ type: "answer", sdp });
    this._remoteSession = sdpSession(sdp);
    await this._flushCandidates(pc);
    if (this._offerPending) await this._makeOffer();
  }

  async _onCandidate(candidate) {
    if (!candidate || typeof candidate.candidate !== "string" || !candidate.candidate) return;
    const pc = this.pc;
    if (!pc || !pc.remoteDescription) {
      this._pendingCandidates.push(candidate);
      return;
    }
    await pc.addIceCandidate(candidate);
  }

  async _flushCandidates(pc) {
    const pending = this._pendingCandidates;
    this._pendingCandidates = [];
    for (const candidate of pending) {
      try {
        await pc.addIceCandidate(candidate);
      } catch (err) {
        console.warn("rtc-peer: candidate refused", err);
      }
    }
  }

  /** Send one more track of the local stream (Peer.addTrack). */
  addTrack(track) {
    const pc = this.pc;
    if (!pc) {
      if (!this.offerer) this._askForOffer();
      return;
    }
    if (pc.getSenders().some((s) => s.track === track)) return;
    pc.addTrack(track, this.localStream ?? new MediaStream([track]));
    // negotiationneeded follows: offer (offerer) or renegotiate with kinds (answerer).
  }

  /**
   * Stop sending a track (Peer.removeTrack). Between browsers the offerer
   * re-offers on the same connection. An answerer cannot offer, and aiortc
   * does not end a track whose sender went away on a re-offer, so otherwise
   * a new connection is made (the answerer asks for it), where the remote
   * copy ends, as with a Python peer.
   */
  removeTrack(track) {
    const pc = this.pc;
    const sender = pc?.getSenders().find((s) => s.track === track);
    if (!sender) return;
    pc.removeTrack(sender);
    if (!this.offerer) void this._signal({ type: "renegotiate" });
    else if (!this._remoteRestarts) {
      void this._refreshIce().then(() => {
        if (!this.closed) this._newConnection();
      });
    }
  }

  /** Send this stream's tracks (replacing the previous stream's); null stops sending. */
  setLocalStream(stream) {
    const previous = this.localStream;
    this.localStream = stream;
    const pc = this.pc;
    if (!pc) {
      if (!this.offerer && stream) this._askForOffer();
      return;
    }
    for (const sender of pc.getSenders()) {
      if (sender.track && previous?.getTracks().includes(sender.track)) pc.removeTrack(sender);
    }
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    // negotiationneeded follows: offer (offerer) or renegotiate (answerer).
  }

  _dropConnection() {
    const pc = this.pc;
    this.pc = null;
    if (this.channel) {
      try {
        this.channel.close();
      } catch {
        /* already closed */
      }
      this.channel = null;
    }
    if (pc) pc.close();
  }

  close() {
    if (this.closed) return;
    this._setState("closed");
    this.closed = true;
    clearTimeout(this._connectTimer);
    clearTimeout(this._retryTimer);
    clearTimeout(this._graceTimer);
    this._dropConnection();
  }
}
