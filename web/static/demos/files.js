// File transfer demo: pick or drop files, send them to one peer or to all,
// watch the progress, check the SHA-256, download what arrived.
import { displayName, el, formatBytes, initHeader, nameFromUrl, roomFromUrl, roster, startPeer } from "./common.js";

const room = await roomFromUrl();
const name = nameFromUrl();
initHeader(room);

const peer = await startPeer(room, name);
const target = document.getElementById("target");
const input = document.getElementById("file-input");
const pick = document.getElementById("pick-label");
const dropzone = document.getElementById("dropzone");
const hint = document.getElementById("drop-hint");
const list = document.getElementById("transfers");
const none = document.getElementById("no-transfers");

roster(peer, document.getElementById("roster"), { selfName: name });

function refreshTargets() {
  const chosen = target.value;
  target.replaceChildren(el("option", { value: "", text: "Everyone in the room" }));
  for (const [peerId, info] of peer.peers) {
    target.append(el("option", { value: peerId, text: displayName(info) }));
  }
  target.value = peer.peers.has(chosen) ? chosen : "";
  const nobody = peer.peers.size === 0;
  target.disabled = input.disabled = nobody;
  pick.setAttribute("aria-disabled", String(nobody));
  pick.tabIndex = nobody ? -1 : 0;
  hint.textContent = nobody
    ? "Waiting for someone to join this room… share the link above."
    : "or use “Choose files…”; they go out as soon as you pick them.";
}
for (const event of ["peer-joined", "peer-left", "signaling"]) peer.on(event, refreshTargets);
refreshTargets();

// -- transfer rows --------------------------------------------------------------

const rows = new Map(); // `${direction}/${peerId}/${id}` -> row parts

function row(direction, peerId, info) {
  const key = `${direction}/${peerId}/${info.id}`;
  let r = rows.get(key);
  if (r) return r;
  const who = displayName(peer.peers.get(peerId) ?? { peerId });
  const bar = el("progress", { max: String(Math.max(info.size, 1)), value: "0", "aria-label": `Progress of ${info.name}` });
  const state = el("span", { class: "badge warn", text: direction === "send" ? "sending" : "receiving" });
  const sha = el("span", { class: "sha", text: "SHA-256: computing as the bytes go…" });
  const amount = el("span", { class: "amount", text: `0 / ${formatBytes(info.size)}` });
  const actions = el("span", { class: "actions" });
  const node = el(
    "li",
    { class: "transfer", "data-direction": direction, "data-peer": peerId, "data-id": info.id },
    el(
      "div",
      { class: "transfer-head" },
      el("span", { class: "fname", text: info.name, title: info.name }),
      el("span", { class: "dir", text: direction === "send" ? `to ${who}` : `from ${who}` }),
      state,
    ),
    bar,
    el("div", { class: "transfer-foot" }, amount, sha, actions),
  );
  list.prepend(node);
  none.hidden = true;
  r = { node, bar, state, sha, amount, actions, size: info.size, direction };
  rows.set(key, r);
  return r;
}

let pending = null; // progress updates, applied once per frame
const dirty = new Map();
function progress(direction, peerId, info) {
  dirty.set(`${direction}/${peerId}/${info.id}`, { direction, peerId, info });
  if (pending) return;
  pending = requestAnimationFrame(() => {
    pending = null;
    for (const { direction: d, peerId: p, info: i } of dirty.values()) {
      const r = row(d, p, i);
      if (r.node.classList.contains("done") || r.node.classList.contains("failed")) continue;
      r.bar.value = i.done;
      r.amount.textContent = `${formatBytes(i.done)} / ${formatBytes(i.size)}`;
    }
    dirty.clear();
  });
}

function finish(r, ok, text, sha256) {
  r.node.classList.add(ok ? "done" : "failed");
  r.bar.value = ok ? r.size : r.bar.value;
  if (ok) r.amount.textContent = `${formatBytes(r.size)} / ${formatBytes(r.size)}`;
  r.state.className = `badge ${ok ? "ok" : "bad"}`;
  r.state.textContent = ok ? (r.direction === "send" ? "delivered" : "received") : "failed";
  r.sha.className = `sha ${ok ? "ok" : "bad"}`;
  r.sha.textContent = text;
  if (sha256) r.sha.dataset.sha256 = sha256;
}

peer.on("file-progress", (peerId, info) => progress(info.direction, peerId, info));
peer.on("file", (peerId, file) => {
  if (!(file instanceof File)) return; // only the library's own (a relay cannot carry a File)
  const r = row("receive", peerId, { id: file.transferId, name: file.name, size: file.size });
  finish(r, true, `SHA-256 ✓ ${file.sha256}`, file.sha256);
  const url = URL.createObjectURL(file);
  r.actions.append(el("a", { class: "btn btn-small btn-primary", href: url, download: file.name, text: "Download" }));
});
peer.on("file-failed", (peerId, info) => {
  const r = row(info.direction, peerId, info);
  finish(r, false, `✗ ${info.error?.message ?? "failed"}`);
});

// -- sending ------------------------------------------------------------------------

async function sendTo(peerId, file) {
  try {
    const result = await peer.sendFile(peerId, file);
    const r = row("send", peerId, result);
    finish(r, true, `SHA-256 ✓ ${result.sha256} (confirmed by the receiver)`, result.sha256);
  } catch (err) {
    console.warn("send failed", err);
  }
}

function sendAll(files) {
  if (!files.length || peer.peers.size === 0) return;
  const targets = target.value ? [target.value] : [...peer.peers.keys()];
  for (const file of files) for (const peerId of targets) void sendTo(peerId, file);
}

input.addEventListener("change", () => {
  sendAll([...input.files]);
  input.value = "";
});
pick.addEventListener("keydown", (event) => {
  if ((event.key === "Enter" || event.key === " ") && !input.disabled) {
    event.preventDefault();
    input.click();
  }
});
for (const name of ["dragenter", "dragover"]) {
  dropzone.addEventListener(name, (event) => {
    event.preventDefault();
    dropzone.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  dropzone.addEventListener(name, () => dropzone.classList.remove("over"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  sendAll([...(event.dataTransfer?.files ?? [])]);
});
document.body.dataset.ready = "true";
