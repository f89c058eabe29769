// The browser's side of the connectivity doctor (check.html): one row per
// check, each ok / FAIL (with the reason and the fix) / skip (with the reason).
// Every row carries data-status, so a test (or a support person) can read it.

import { io } from "../vendor/socket.io.esm.min.js";

const TIMEOUT_MS = 10000;
/** The server to check: this page's own, or ?server=https://other.example (it must
 *  then allow this page's origin with --allowed-origins). */
const TARGET = (() => {
  const given = new URL(location.href).searchParams.get("server");
  try {
    const url = given ? new URL(given) : null;
    return url && /^https?:$/.test(url.protocol) ? url.origin : location.origin;
  } catch {
    return location.origin;
  }
})();
const ORDER = ["websocket", "polling", "join", "stun", "turn", "camera"];
const FIX = {
  websocket: "the proxy must pass the websocket upgrade (nginx: proxy_http_version 1.1 and the Upgrade and Connection headers, see docs/deployment.md); some networks block websockets, and clients then stay on polling",
  polling: "the proxy must pass /socket.io/ to the server, with sticky sessions when there are several nodes",
  join: "see the message; with --auth-secret a token is needed",
  stun: "allow UDP out to the STUN server's port, and check --stun",
  turn: "coturn needs use-auth-secret with static-auth-secret equal to the server's --turn-secret, and right clocks; allow UDP (or TCP) to its port",
  camera: "allow the camera for this site in the browser's settings; the page must be served over https (or localhost)",
};

const list = document.getElementById("checks");
const rows = new Map();
for (const name of ORDER) {
  const li = document.createElement("li");
  li.dataset.check = name;
  li.dataset.status = "running";
  li.innerHTML = `<span class="badge warn">…</span><strong>${name}</strong><span class="why">checking…</span>`;
  list.append(li);
  rows.set(name, li);
}

function report(name, status, why) {
  const li = rows.get(name);
  li.dataset.status = status;
  const badge = li.querySelector(".badge");
  badge.textContent = status;
  badge.className = `badge ${status === "ok" ? "ok" : status === "FAIL" ? "bad" : "warn"}`;
  const text = li.querySelector(".why");
  text.textContent = why;
  if (status === "FAIL") {
    const fix = document.createElement("span");
    fix.className = "fix";
    fix.textContent = `Fix: ${FIX[name]}`;
    text.append(fix);
  }
  summarize();
}

function summarize() {
  const statuses = [...rows.values()].map((li) => li.dataset.status);
  const summary = document.getElementById("summary");
  const failed = statuses.filter((s) => s === "FAIL").length;
  const done = !statuses.includes("running");
  summary.textContent = failed ? `${failed} failed` : done ? "All checks passed" : "Checking…";
  summary.className = `badge ${failed ? "bad" : done ? "ok" : "warn"}`;
  document.body.dataset.done = String(!statuses.some((s) => s === "running"));
}

function connect(transports) {
  return new Promise((resolve, reject) => {
    const socket = io(TARGET, { transports, upgrade: false, reconnection: false, timeout: TIMEOUT_MS });
    const timer = setTimeout(() => { socket.close(); reject(new Error("timed out")); }, TIMEOUT_MS);
    socket.on("connect", () => { clearTimeout(timer); resolve(socket); });
    socket.on("connect_error", (err) => { clearTimeout(timer); socket.close(); reject(err); });
  });
}

async function transport(name) {
  try {
    const socket = await connect([name]);
    report(name, "ok", `connected over ${socket.io.engine.transport.name}`);
    return socket;
  } catch (err) {
    report(name, "FAIL", `no connection over ${name}: ${err.message}`);
    return null;
  }
}

function call(socket, event, payload) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${event}`)), TIMEOUT_MS);
    socket.emit(event, payload, (ack) => { clearTimeout(timer); resolve(ack); });
  });
}

const urlsOf = (server) => (Array.isArray(server.urls) ? server.urls : [server.urls]);

/** Gather candidates with these servers; what was found, and any candidate errors. */
async function gather(iceServers, policy) {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy });
  const found = [];
  const errors = [];
  pc.onicecandidateerror = (e) => errors.push(`${e.url || ""} ${e.errorCode} ${e.errorText}`.trim());
  const done = new Promise((resolve) => {
    pc.onicecandidate = (e) => { if (e.candidate) found.push(e.candidate); else resolve(); };
    setTimeout(resolve, TIMEOUT_MS);
  });
  pc.createDataChannel("check");
  await pc.setLocalDescription(await pc.createOffer());
  await done;
  pc.close();
  return { found, errors };
}

async function stun(iceServers) {
  const servers = iceServers.map((s) => ({ urls: urlsOf(s).filter((u) => u.startsWith("stun:")) }))
    .filter((s) => s.urls.length);
  if (!servers.length) return report("stun", "skip", "no STUN server configured (--stun)");
  const { found, errors } = await gather(servers, "all");
  const srflx = found.find((c) => c.type === "srflx");
  if (srflx) return report("stun", "ok", `seen from outside as ${srflx.address}:${srflx.port}`);
  if (errors.length) return report("stun", "FAIL", `the STUN server did not answer: ${errors.join("; ")}`);
  report("stun", "ok", "the STUN server answered with this machine's own address (no NAT in between)");
}

async function turn(iceServers) {
  const servers = iceServers.filter((s) => urlsOf(s).some((u) => /^turns?:/.test(u)));
  if (!servers.length) return report("turn", "skip", "no TURN server configured (--turn-url, --turn-secret)");
  const { found, errors } = await gather(servers, "relay");
  const relay = found.find((c) => c.type === "relay");
  if (relay) return report("turn", "ok", `relay candidate ${relay.address}:${relay.port} (${relay.protocol})`);
  report("turn", "FAIL", `no relay candidate with the minted credentials${errors.length ? `: ${errors.join("; ")}` : ""}`);
}

async function camera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return report("camera", "FAIL", "this page cannot use the camera here (not a secure context?)");
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const [track] = stream.getVideoTracks();
    report("camera", "ok", `camera allowed: ${track ? track.label || "a camera" : "no video track"}`);
    stream.getTracks().forEach((t) => t.stop());
  } catch (err) {
    report("camera", "FAIL", `${err.name}: ${err.message}`);
  }
}

async function run() {
  report("camera", "skip", "press \"Test the camera\" (it asks for permission)");
  document.getElementById("camera").addEventListener("click", () => {
    rows.get("camera").dataset.status = "running";
    camera();
  });
  const ws = await transport("websocket");
  const polling = await transport("polling");
  const socket = ws ?? polling;
  let iceServers = null;
  if (!socket) {
    report("join", "skip", "no Socket.IO connection");
  } else {
    try {
      const ack = await call(socket, "join", { room: `check-${Math.random().toString(36).slice(2, 10)}` });
      if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.message}`);
      iceServers = ack.iceServers;
      report("join", "ok", `joined; ${iceServers.length} ICE server entries handed out`);
    } catch (err) {
      report("join", "FAIL", err.message);
    }
  }
  for (const s of [ws, polling]) s?.close();
  if (!iceServers) {
    report("stun", "skip", "no iceServers (the join did not work)");
    report("turn", "skip", "no iceServers (the join did not work)");
    return;
  }
  if (typeof RTCPeerConnection === "undefined") {
    report("stun", "FAIL", "this browser has no WebRTC (RTCPeerConnection)");
    report("turn", "FAIL", "this browser has no WebRTC (RTCPeerConnection)");
    return;
  }
  await stun(iceServers);
  await turn(iceServers);
}

run();
