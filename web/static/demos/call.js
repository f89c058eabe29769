// Video call demo: a mesh, camera and microphone to every other peer, a tile
// per participant with its transport and connection state. A browser without
// WebRTC (or without a camera) still joins: roster and chat work.
import { avatar, chatPanel, displayName, el, initHeader, insecureContextNote, nameFromUrl, roomFromUrl, roster, showPath, startPeer, webrtcFromUrl } from "./common.js";

const room = await roomFromUrl();
const name = nameFromUrl();
initHeader(room);

const tiles = document.getElementById("tiles");
const note = document.getElementById("media-note");
const micButton = document.getElementById("mic");
const camButton = document.getElementById("cam");
const leaveButton = document.getElementById("leave");

const canRtc = typeof globalThis.RTCPeerConnection === "function" && webrtcFromUrl();
let stream = null;
if (!canRtc) {
  note.textContent = "This browser has no WebRTC: you are in the room for the roster and the chat, without video.";
  note.hidden = false;
} else if (insecureContextNote()) {
  note.textContent = `${insecureContextNote()} Until then you see and hear the others; they do not see you.`;
  note.dataset.reason = "insecure-context";
  note.hidden = false;
} else {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch (err) {
    note.textContent = `No camera or microphone (${err.name ?? err}): you see and hear the others, they do not see you.`;
    note.hidden = false;
  }
}

// -- tiles ------------------------------------------------------------------

function makeTile(id, label, { self = false } = {}) {
  const video = el("video", { autoplay: true, playsinline: true, "aria-label": `Video of ${label}` });
  video.muted = self;
  const placeholder = el("div", { class: "placeholder" }, el("div", {}, avatar(label), el("div", { text: self ? "Camera off" : "Waiting for video…" })));
  const transport = el("span", { class: "badge", "data-role": "transport" });
  const state = el("span", { class: "badge", "data-role": "state" });
  const muted = el("span", { class: "badge bad", "data-role": "muted", text: "muted", hidden: true });
  const tile = el(
    "figure",
    { class: `tile${self ? " self" : ""}`, "data-peer": id },
    video,
    placeholder,
    el("figcaption", { class: "label" }, el("span", { class: "tname", text: self ? `${label} (you)` : label }), muted, transport, state),
  );
  tiles.append(tile);
  return { tile, video, placeholder, transport, state, muted };
}

function showVideo(t, mediaStream, hasVideo) {
  if (t.video.srcObject !== mediaStream) t.video.srcObject = mediaStream;
  t.placeholder.hidden = hasVideo;
  t.video.play().catch(() => {
    // Autoplay with sound refused: play muted, offer to unmute.
    t.video.muted = true;
    void t.video.play();
    if (!t.tile.querySelector(".unmute")) {
      const button = el("button", { class: "btn btn-small unmute", type: "button", text: "Unmute" });
      button.addEventListener("click", () => {
        t.video.muted = false;
        button.remove();
      });
      t.tile.querySelector(".label").append(button);
    }
  });
}

const self = makeTile("self", name, { self: true });
self.transport.textContent = canRtc ? "local" : "no WebRTC";
if (!stream) self.placeholder.querySelector("div > div").textContent = canRtc ? "No camera" : "No video without WebRTC";
self.state.remove();
if (stream) showVideo(self, stream, true);

const remote = new Map(); // peerId -> tile parts

function stateKind(state) {
  if (state === "connected") return "ok";
  if (state === "failed" || state === "closed") return "bad";
  return "warn";
}

function refresh(peerId) {
  const t = remote.get(peerId);
  if (!t) return;
  const transport = peer.transport(peerId);
  t.transport.textContent = transport;
  t.transport.className = `badge ${transport === "webrtc" ? "ok" : "warn"}`;
  t.transport.dataset.transport = transport;
  void showPath(peer, peerId, t.transport);
  t.tile.dataset.transport = transport;
  const state = peer.connectionState(peerId);
  t.state.textContent = state === "none" ? "chat only" : state;
  t.state.className = `badge ${state === "none" ? "" : stateKind(state)}`;
  t.tile.dataset.state = state;
}

function addRemote(peerId, info) {
  if (remote.has(peerId)) return;
  const t = makeTile(peerId, displayName(info));
  if (!info.webrtc || !canRtc) t.placeholder.querySelector("div > div").textContent = "No video (chat only)";
  remote.set(peerId, t);
  refresh(peerId);
}

function dropRemote(peerId) {
  remote.get(peerId)?.tile.remove();
  remote.delete(peerId);
}

// -- the peer -------------------------------------------------------------------

const peer = await startPeer(room, name, { stream, receiveMedia: canRtc });
for (const [peerId, info] of peer.peers) addRemote(peerId, info);
peer.on("peer-joined", (peerId, info) => {
  addRemote(peerId, info);
  void peer.emit("call-state", mediaState(), { to: peerId }).catch(() => {});
});
peer.on("peer-left", (peerId) => dropRemote(peerId));
peer.on("upgrade", refresh);
peer.on("downgrade", refresh);
setInterval(() => remote.forEach((_, peerId) => refresh(peerId)), 2000); // the path's round-trip time
peer.on("connection-state", refresh);
peer.on("track", (peerId, _track, mediaStream) => {
  const t = remote.get(peerId);
  if (t) showVideo(t, mediaStream, mediaStream.getVideoTracks().length > 0);
});
peer.on("call-state", (peerId, data) => {
  const t = remote.get(peerId);
  if (!t || typeof data !== "object" || data === null) return;
  t.muted.hidden = data.audio !== false;
  if (data.video === false) t.placeholder.hidden = false;
  else if (t.video.srcObject) t.placeholder.hidden = true;
});

roster(peer, document.getElementById("roster"), { selfName: name });
const form = document.getElementById("chat-form");
chatPanel(peer, { log: document.getElementById("chat-log"), form, input: document.getElementById("chat-input"), selfName: name });
for (const node of form.elements) node.disabled = false;

// -- controls ----------------------------------------------------------------------

function mediaState() {
  return {
    audio: Boolean(stream?.getAudioTracks().some((t) => t.enabled)),
    video: Boolean(stream?.getVideoTracks().some((t) => t.enabled)),
  };
}

function toggle(kind, button, onText, offText) {
  const tracks = kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks();
  const enabled = !tracks.some((t) => t.enabled);
  for (const track of tracks) track.enabled = enabled;
  button.setAttribute("aria-pressed", String(!enabled));
  button.textContent = enabled ? onText : offText;
  if (kind === "video") self.placeholder.hidden = enabled;
  else self.muted.hidden = enabled;
  void peer.emit("call-state", mediaState()).catch(() => {});
}

if (stream?.getAudioTracks().length) {
  micButton.disabled = false;
  micButton.addEventListener("click", () => toggle("audio", micButton, "Mute microphone", "Unmute microphone"));
}
if (stream?.getVideoTracks().length) {
  camButton.disabled = false;
  camButton.addEventListener("click", () => toggle("video", camButton, "Turn camera off", "Turn camera on"));
}
leaveButton.disabled = false;
leaveButton.addEventListener("click", async () => {
  leaveButton.disabled = micButton.disabled = camButton.disabled = true;
  await peer.close();
  for (const track of stream?.getTracks() ?? []) track.stop();
  for (const peerId of [...remote.keys()]) dropRemote(peerId);
  self.video.srcObject = null;
  self.placeholder.hidden = false;
  note.replaceChildren("You left the call. ", el("a", { href: location.href, text: "Join again" }));
  note.hidden = false;
});
window.addEventListener("pagehide", () => void peer.close());
document.body.dataset.ready = "true";
