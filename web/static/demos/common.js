// Shared bits of the demo pages: room and name from the URL, the header,
// the roster, the chat panel. Plain DOM, no framework.

import { Peer } from "../rtc-peer.js";

const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Room from ?room=..., else (no ?room= at all) a fresh one written back into
 * the URL (shareable). A ?room= that is not a valid room name is shown as an
 * error with a corrected suggestion, and the promise never settles: the page
 * stops there instead of silently joining another room.
 */
export async function roomFromUrl() {
  const url = new URL(location.href);
  const given = url.searchParams.get("room");
  if (given !== null && given !== "" && !ROOM_RE.test(given)) {
    showRoomError(given);
    return new Promise(() => {});
  }
  let room = given ?? "";
  if (!room) {
    room = `room-${Math.random().toString(36).slice(2, 8)}`;
    url.searchParams.set("room", room);
    history.replaceState(null, "", url);
  }
  return room;
}

function showRoomError(given) {
  const suggestion = given.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64) || "lobby";
  const fixed = new URL(location.href);
  fixed.searchParams.set("room", suggestion);
  const box = el(
    "section",
    { class: "card room-error", role: "alert" },
    el("h2", { text: "Not a room name" }),
    el("p", { text: `“${given.slice(0, 80)}” cannot be a room: a room name is 1 to 64 letters, digits, "_", "." or "-".` }),
    el("p", {}, "Open ", el("a", { href: fixed.href, text: suggestion }), " instead, or pick a room on the ", el("a", { href: "/", text: "home page" }), "."),
  );
  const main = document.querySelector("main") ?? document.body;
  main.replaceChildren(box);
  setStatus("Invalid room", "bad");
  document.body.dataset.error = "room";
}

/**
 * The camera and microphone need a secure context (https, or http on
 * localhost); on plain http from another address the browser does not even
 * offer them. Returns the sentence that says so, or null when secure.
 */
export function insecureContextNote() {
  if (globalThis.isSecureContext !== false) return null;
  return (
    `The camera and microphone need HTTPS or localhost, and this page is on ${location.origin}. ` +
    "Start the server with --self-signed (or --tls-cert and --tls-key) and open the https:// address it prints."
  );
}

/**
 * Display name: ?name=..., else the one typed on the home page, else a
 * friendly random one. The random one is kept per tab (sessionStorage), so
 * two tabs of one browser get two names.
 */
export function nameFromUrl() {
  const url = new URL(location.href);
  let name = url.searchParams.get("name");
  for (const [store, key] of [[() => sessionStorage, "rtc-demo-tab-name"], [() => localStorage, "rtc-demo-name"]]) {
    if (name) break;
    try {
      name = store().getItem(key);
    } catch {
      name = null; // private mode
    }
  }
  if (!name) {
    const animals = ["Otter", "Falcon", "Lynx", "Heron", "Panda", "Koala", "Orca", "Fox", "Ibis", "Yak"];
    const random = globalThis.crypto.getRandomValues(new Uint32Array(2));
    name = `${animals[random[0] % animals.length]} ${(random[1] % 90) + 10}`;
  }
  try {
    sessionStorage.setItem("rtc-demo-tab-name", name);
  } catch {
    /* private mode */
  }
  return name.slice(0, 40);
}

/** ?webrtc=0 forces the relay (what a browser without WebRTC gets anyway). */
export function webrtcFromUrl() {
  return new URL(location.href).searchParams.get("webrtc") !== "0";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function avatar(name) {
  const node = el("span", { class: "avatar", "aria-hidden": "true", text: (name || "?").trim()[0]?.toUpperCase() ?? "?" });
  node.style.setProperty("--hue", hue(name || "?"));
  return node;
}

export function displayName(info) {
  const name = info?.meta?.name;
  return typeof name === "string" && name ? name.slice(0, 40) : `Peer ${info?.peerId?.slice(0, 6) ?? ""}`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i += 1;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** The transport badge for one remote peer. */
export function transportBadge(peer, peerId) {
  const t = peer.transport(peerId);
  const node = el("span", { class: `badge ${t === "webrtc" ? "ok" : "warn"}`, "data-transport": t, text: t });
  node.title = t === "webrtc" ? "Direct peer-to-peer data channel" : "Through the signaling server";
  showPath(peer, peerId, node);
  return node;
}

/** Write the path in use (peer.path: candidate type, round-trip time) into a badge. */
export async function showPath(peer, peerId, node) {
  if (!peer.path) return;
  const path = await peer.path(peerId).catch(() => null);
  if (!path || path.transport !== node.dataset.transport) return;
  node.dataset.candidate = path.candidate ?? "";
  if (path.transport !== "webrtc") return;
  const rtt = path.rttMs === null ? "" : `, ${path.rttMs.toFixed(0)} ms`;
  node.textContent = `webrtc · ${path.candidate ?? "?"}${rtt}`;
  node.title = path.candidate === "relay" ? "Peer to peer, relayed by a TURN server" : "Direct peer-to-peer data channel";
}

/** Header status: connection to the signaling server. */
export function setStatus(text, kind = "") {
  const node = document.getElementById("status");
  if (!node) return;
  node.textContent = text;
  node.className = `badge ${kind}`;
}

/** Fill the header's room name and the copy-link button. */
export function initHeader(room) {
  const roomNode = document.getElementById("room-name");
  if (roomNode) roomNode.textContent = room;
  const copy = document.getElementById("copy-link");
  if (copy) {
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(location.href);
        copy.textContent = "Link copied";
      } catch {
        copy.textContent = "Copy the address bar";
      }
      setTimeout(() => (copy.textContent = "Copy link"), 2000);
    });
  }
  for (const a of document.querySelectorAll(".topnav a[data-demo]")) {
    a.href = `${a.dataset.demo}?room=${encodeURIComponent(room)}`;
  }
}

/** Connect a Peer for a demo page, keeping the header status current. */
export async function startPeer(room, name, options = {}) {
  const webrtc = webrtcFromUrl() && options.webrtc !== false;
  const peer = new Peer(location.origin, room, { meta: { name }, ...options, webrtc });
  peer.on("signaling", (state) => {
    if (state === "reconnecting") setStatus("Reconnecting…", "warn");
    else if (state === "closed") setStatus("Left", "");
    else setStatus(peer.webrtc ? "Connected" : "Connected · relay only", "ok");
  });
  setStatus("Connecting…", "warn");
  try {
    await peer.connect();
  } catch (err) {
    setStatus(err.code === "room-full" ? "Room is full" : `Could not connect (${err.code ?? "error"})`, "bad");
    throw err;
  }
  window.rtcPeer = peer; // for the console and the tests
  const note = document.getElementById("relay-note");
  if (note && !peer.webrtc) note.hidden = false;
  return peer;
}

/**
 * The "who's here" list: you first, then everyone else with their transport.
 * `extra(peerId)` may add nodes to a row.
 */
export function roster(peer, listNode, { selfName, extra } = {}) {
  const render = () => {
    listNode.replaceChildren();
    listNode.append(
      el(
        "li",
        { "data-peer": "self" },
        avatar(selfName),
        el("span", { class: "who" }, el("span", { class: "name", text: `${selfName} (you)` }), el("span", { class: "sub", text: peer.webrtc ? "WebRTC" : "relay only" })),
      ),
    );
    for (const [peerId, info] of peer.peers) {
      const row = el(
        "li",
        { "data-peer": peerId },
        avatar(displayName(info)),
        el(
          "span",
          { class: "who" },
          el("span", { class: "name", text: displayName(info) }),
          el("span", { class: "sub", text: info.webrtc ? peerId.slice(0, 8) : `${peerId.slice(0, 8)} · no WebRTC` }),
        ),
        transportBadge(peer, peerId),
      );
      if (extra) for (const node of [extra(peerId)].flat()) if (node) row.append(node);
      listNode.append(row);
    }
    const count = document.getElementById("peer-count");
    if (count) count.textContent = String(peer.peers.size + 1);
  };
  for (const event of ["peer-joined", "peer-left", "upgrade", "downgrade", "signaling"]) peer.on(event, render);
  render();
  return render;
}

/** A chat panel: messages over the Peer as event "chat", system lines for joins. */
export function chatPanel(peer, { log, form, input, selfName }) {
  const add = (node) => {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(node);
    if (atBottom) log.scrollTop = log.scrollHeight;
  };
  const time = () => new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const message = (name, text, mine) =>
    el(
      "li",
      { class: `msg${mine ? " mine" : ""}` },
      avatar(name),
      el("div", {}, el("div", { class: "meta", text: `${mine ? "You" : name} · ${time()}` }), el("div", { class: "bubble", text })),
    );
  const system = (text) => add(el("li", { class: "msg system", text }));

  peer.on("chat", (from, data) => {
    const text = typeof data?.text === "string" ? data.text.slice(0, 2000) : null;
    if (text === null) return;
    add(message(displayName(peer.peers.get(from)), text, false));
  });
  const names = new Map([...peer.peers].map(([id, info]) => [id, displayName(info)]));
  peer.on("peer-joined", (id, info) => {
    names.set(id, displayName(info));
    system(`${displayName(info)} joined`);
  });
  peer.on("peer-left", (id, reason) =>
    system(`${names.get(id) ?? "A peer"} ${reason === "left" ? "left" : "lost the connection"}`),
  );
  peer.on("upgrade", (id) => system(`Direct connection with ${displayName(peer.peers.get(id))}`));
  peer.on("downgrade", (id) => system(`${displayName(peer.peers.get(id))} is back on the relay`));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    add(message(selfName, text, true));
    try {
      await peer.emit("chat", { text });
    } catch (err) {
      system(`Not sent: ${err.message}`);
    }
  });
  system(`You joined room ${peer.room}. Share the link to invite others.`);
  return { system };
}
