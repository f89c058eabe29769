// The numbers and names both clients share (mirrors peer/constants.py).
// Both files are checked against tests/fixtures/peer-constants.json by the JS
// and the Python tests, so a change to one that misses the other fails both.

/** Writers wait while a data channel holds more than this, unsent ... */
export const DATA_CHANNEL_HIGH_WATER_BYTES = 1024 * 1024;
/** ... and go on once it drained below this (bufferedamountlow). */
export const DATA_CHANNEL_LOW_WATER_BYTES = 256 * 1024;
/** Largest data-channel message sent: what every WebRTC stack accepts. */
export const DATA_CHANNEL_MESSAGE_BYTES = 64 * 1024;
/** Largest relay `data` sent (well under the server's default 1 MiB). */
export const RELAY_MESSAGE_BYTES = 256 * 1024;

export const LOSSY_CHANNEL_LABEL = "rtc-peer.lossy";
/** The lossy channel (unordered, no retransmits) is negotiated out of band on this stream id. */
export const LOSSY_CHANNEL_ID = 1000;

/** Milliseconds before the first reconnect attempt (then doubling). */
export const RECONNECT_DELAY_FIRST_MS = 250;
/** Cap of the reconnect delay: below the server's default resume grace (15 s). */
export const RECONNECT_DELAY_MAX_MS = 5000;
/** Each delay is moved at random by up to this fraction, either way (then capped). */
export const RECONNECT_JITTER = 0.5;

/** A request to the server may take this long before the path counts as lost. */
export const SIGNALING_REQUEST_TIMEOUT_MS = 10000;
/** The connection to the server may take this long to open. */
export const SIGNALING_CONNECT_TIMEOUT_MS = 10000;
/** Default `timeout` of Peer.request. */
export const PEER_REQUEST_TIMEOUT_MS = 10000;
/** Requests from one peer whose handlers may run at once; past it, "handler-error" at once. */
export const MAX_ANSWERING_PER_PEER = 256;
/** A data channel attempt may take this long before the pair stays on the relay. */
export const WEBRTC_CONNECT_TIMEOUT_MS = 10000;
/** Pause before a failed pair is tried again: doubling from the first, capped. */
export const WEBRTC_RETRY_DELAY_FIRST_MS = 2000;
export const WEBRTC_RETRY_DELAY_MAX_MS = 60000;

/** Library event names: an application cannot emit them, a remote never raises them. */
export const RESERVED_EVENTS = Object.freeze([
  "peer-joined", "peer-left", "peer-updated", "upgrade", "downgrade",
  "file", "file-offer", "file-progress", "file-failed", "track", "signaling",
  "connection-state", "error",
]);
