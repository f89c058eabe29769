// Types of the browser Peer client (rtc-peer.js). See docs/browser.md.

/** JSON values an application sends with emit/request, or gets back. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** What emit and request take: a JSON value or binary (delivered as a Uint8Array). */
export type Data = Json | ArrayBuffer | ArrayBufferView;
/** What a handler receives: a JSON value or a Uint8Array. */
export type Received = Json | Uint8Array;

export type Transport = "webrtc" | "relay";
export type CandidateType = "host" | "srflx" | "prflx" | "relay";
export type SignalingState = "connected" | "reconnecting" | "resumed" | "rejoined" | "closed";

export interface PeerInfo {
  peerId: string;
  meta: Record<string, Json>;
  webrtc: boolean;
}

export interface PathInfo {
  transport: Transport;
  /** The selected ICE pair's local candidate type; "relay" when a TURN server relays. */
  candidate: CandidateType | null;
  /** The selected pair's current round-trip time, when the browser reports one. */
  rttMs: number | null;
}

export interface FileInfo {
  id: string;
  name: string;
  size: number;
}

export interface FileProgress extends FileInfo {
  done: number;
  direction: "send" | "receive";
}

export interface FileFailure extends FileInfo {
  direction: "send" | "receive";
  error: Error;
}

export interface SentFile extends FileInfo {
  sha256: string;
}

/** A received file, its SHA-256 checked. */
export interface ReceivedFile extends File {
  sha256: string;
}

export interface PeerOptions {
  /** Shown to the others (a JSON object, at most 1 KiB as JSON). */
  meta?: Record<string, Json>;
  /** false: relay only (default: true when the page has RTCPeerConnection). */
  webrtc?: boolean;
  /** Instead of the server's iceServers. */
  iceServers?: RTCIceServer[] | null;
  /** "relay": connect through TURN only (the RTCPeerConnection option). */
  iceTransportPolicy?: "all" | "relay";
  /** JWT when the server wants one. */
  token?: string | null;
  /** Reconnect by itself (default true). */
  reconnect?: boolean;
  /** Media to send to every peer (calls). */
  stream?: MediaStream | null;
  /** Ask every peer for audio and video. */
  receiveMedia?: boolean;
  /** Server-blind room: peers with the same secret encrypt all they send through the server. */
  secret?: string | null;
  /** Largest file accepted (default: no limit). */
  maxFileBytes?: number | null;
  /** May refuse an offered file before any byte arrives. */
  acceptFile?: ((senderId: string, name: string, size: number) => boolean | Promise<boolean>) | null;
}

/** The events the Peer raises itself, with their handlers' arguments. */
export interface PeerEvents {
  "peer-joined": [peerId: string, info: PeerInfo];
  "peer-left": [peerId: string, reason: string];
  "peer-updated": [peerId: string, info: PeerInfo];
  upgrade: [peerId: string];
  downgrade: [peerId: string];
  file: [senderId: string, file: ReceivedFile];
  "file-offer": [senderId: string, info: FileInfo];
  "file-progress": [peerId: string, progress: FileProgress];
  "file-failed": [peerId: string, failure: FileFailure];
  track: [peerId: string, track: MediaStreamTrack, stream: MediaStream];
  "connection-state": [peerId: string, state: RTCPeerConnectionState];
  signaling: [state: SignalingState];
  error: [error: Error];
}

export type LibraryEvent = keyof PeerEvents;

/** Library event names: an application cannot emit them, a remote never raises them. */
export declare const RESERVED_EVENTS: readonly LibraryEvent[];
/** The same names, in the order documented. */
export declare const PEER_EVENTS: readonly LibraryEvent[];

/** A request the server refused: `code` is the contract's error code. */
export declare class SignalingError extends Error {
  constructor(code: string, message: string);
  readonly code: string;
  readonly serverMessage: string;
}

/** A request to a peer got no answer. */
export declare class RequestError extends Error {
  constructor(code: "no-handler" | "handler-error" | "timeout", message: string);
  readonly code: "no-handler" | "handler-error" | "timeout";
  readonly detail: string;
}

/** emit, request or handle used a library event name. */
export declare class ReservedEventError extends Error {
  constructor(event: string);
  readonly code: "reserved-event";
}

export declare class Peer {
  constructor(serverUrl: string, room: string, options?: PeerOptions);

  readonly serverUrl: string;
  readonly room: string;
  meta: Record<string, Json>;
  readonly webrtc: boolean;
  /** Own peerId (null before connect). */
  readonly id: string | null;
  /** The other peers in the room. */
  readonly peers: Map<string, PeerInfo>;
  /** Messages dropped because they did not decrypt (rooms with a secret). */
  readonly undecryptable: number;

  /** Connect and join; rejects with a SignalingError. */
  connect(): Promise<this>;
  close(): Promise<void>;

  transport(peerId: string): Transport;
  path(peerId: string): Promise<PathInfo>;
  connectionState(peerId: string): RTCPeerConnectionState | "none";

  on<E extends LibraryEvent>(event: E, handler: (...args: PeerEvents[E]) => unknown): () => void;
  on(event: string, handler: (senderId: string, data: Received) => unknown): () => void;
  off(event: string, handler: (...args: never[]) => unknown): void;

  /**
   * To one peer (`to`) or everyone else; resolves once queued. `reliable:
   * false`: a lossy, unordered datagram (at most 64 KiB), sent now on the
   * second data channel or dropped, never relayed.
   */
  emit(event: string, data: Data, options?: { to?: string | null; reliable?: boolean }): Promise<void>;
  /** Resolves to what the remote handler returned; `timeout` in seconds (default 10). */
  request<T = Received>(peerId: string, event: string, data: Data, options?: { timeout?: number }): Promise<T>;
  /** Answer requests for `event`; null removes the handler. */
  handle(event: string, handler: ((senderId: string, data: Received) => Data | void | Promise<Data | void>) | null): void;
  /** Replace this peer's meta; the others raise "peer-updated". */
  updateMeta(meta: Record<string, Json>): Promise<void>;

  sendFile(peerId: string, file: Blob, options?: { name?: string }): Promise<SentFile>;
  setStream(stream: MediaStream | null): void;
  /** Send a track to every peer with WebRTC, now and later; relay-only peers get none. */
  addTrack(track: MediaStreamTrack): void;
  removeTrack(track: MediaStreamTrack): void;
}
