// Reference signaling server on Node socket.io 4.8, for the benchmark only.
//
// It implements the subset of the signaling contract (shared protocol.md)
// that the load generator uses: `join`, `leave`, `signal`, `relay`, the
// `peer-joined` / `peer-left` events and the `{ok, ...}` acks, with the same
// name checks, so that both servers do comparable work per message.
//
// Usage: node reference-server.mjs [--host 127.0.0.1] [--port 0]
// Prints `listening on http://HOST:PORT` once ready; stops on SIGINT/SIGTERM.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { Server } from "socket.io";

const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const EVENT_RE = /^[^\u0000-\u001f\u007f-\u009f]{1,64}$/;
const MAX_RELAY_BYTES = 1024 * 1024;

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    opts[key] = key === "port" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

const fail = (code, message) => ({ ok: false, error: { code, message } });
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** room name -> Map(peerId -> socket) */
const rooms = new Map();

function reply(socket, event, ack, result) {
  if (typeof ack === "function") ack(result);
  else if (!result.ok) socket.emit("rejected", { event, error: result.error });
}

function onJoin(socket, payload) {
  if (!isObject(payload) || typeof payload.room !== "string" || !ROOM_RE.test(payload.room)) {
    return fail("invalid-payload", "room must be 1-64 characters of A-Z a-z 0-9 _ . -");
  }
  const room = payload.room;
  const meta = isObject(payload.meta) ? payload.meta : {};
  const webrtc = payload.webrtc !== false;
  let members = rooms.get(room);
  if (!members) rooms.set(room, (members = new Map()));
  const peers = [];
  for (const [peerId, other] of members) {
    if (other !== socket) peers.push({ peerId, meta: other.data.meta, webrtc: other.data.webrtc });
  }
  if (!members.has(socket.data.peerId)) {
    if (socket.data.rooms.size === 0) {
      socket.data.meta = meta;
      socket.data.webrtc = webrtc;
    }
    members.set(socket.data.peerId, socket);
    socket.data.rooms.add(room);
    socket.join(room);
    socket.to(room).emit("peer-joined", {
      room, peerId: socket.data.peerId, meta: socket.data.meta, webrtc: socket.data.webrtc,
    });
  }
  return {
    ok: true, room, peerId: socket.data.peerId, peers, iceServers: [],
    resumeToken: socket.data.resumeToken,
  };
}

function leaveRoom(socket, room, reason) {
  const members = rooms.get(room);
  if (!members) return;
  members.delete(socket.data.peerId);
  if (members.size === 0) rooms.delete(room);
  socket.data.rooms.delete(room);
  socket.leave(room);
  socket.to(room).emit("peer-left", { room, peerId: socket.data.peerId, reason });
}

function onLeave(socket, payload) {
  if (!isObject(payload) || typeof payload.room !== "string") return fail("invalid-payload", "room");
  if (!socket.data.rooms.has(payload.room)) return fail("not-in-room", "not in that room");
  leaveRoom(socket, payload.room, "left");
  return { ok: true };
}

/** Resolve the common part of `signal` and `relay`: room membership and target. */
function route(socket, payload) {
  if (!isObject(payload) || typeof payload.room !== "string" || !ROOM_RE.test(payload.room)) {
    return { error: fail("invalid-payload", "bad room") };
  }
  if (!socket.data.rooms.has(payload.room)) return { error: fail("not-in-room", "not in that room") };
  const members = rooms.get(payload.room);
  if (payload.to === undefined) return { members };
  if (typeof payload.to !== "string") return { error: fail("invalid-payload", "bad to") };
  const target = members.get(payload.to);
  if (!target || target === socket) return { error: fail("unknown-peer", "no such peer in room") };
  return { target };
}

function onSignal(socket, payload) {
  const r = route(socket, payload);
  if (r.error) return r.error;
  if (!r.target || !isObject(payload.data)) return fail("invalid-payload", "signal needs to and data");
  if (JSON.stringify(payload.data).length > 65536) return fail("payload-too-large", "data");
  r.target.emit("signal", { room: payload.room, from: socket.data.peerId, data: payload.data });
  return { ok: true };
}

function onRelay(socket, payload) {
  const r = route(socket, payload);
  if (r.error) return r.error;
  if (typeof payload.event !== "string" || !EVENT_RE.test(payload.event)) {
    return fail("invalid-payload", "bad event name");
  }
  const data = payload.data;
  const size = Buffer.isBuffer(data) ? data.length : JSON.stringify(data ?? null).length;
  if (size > MAX_RELAY_BYTES) return fail("payload-too-large", "data");
  const msg = { room: payload.room, from: socket.data.peerId, event: payload.event, data };
  if (r.target) {
    r.target.emit("relay", msg);
    return { ok: true, delivered: 1 };
  }
  socket.to(payload.room).emit("relay", msg);
  return { ok: true, delivered: r.members.size - 1 };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const httpServer = createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
    } else {
      res.writeHead(404).end();
    }
  });
  const io = new Server(httpServer, {
    maxHttpBufferSize: MAX_RELAY_BYTES + 64 * 1024,
    perMessageDeflate: false,
    pingInterval: 25000,
    pingTimeout: 20000,
  });
  const handlers = { join: onJoin, leave: onLeave, signal: onSignal, relay: onRelay };
  io.on("connection", (socket) => {
    socket.data.peerId = randomBytes(12).toString("base64url");
    socket.data.resumeToken = randomBytes(24).toString("base64url");
    socket.data.rooms = new Set();
    for (const [event, handler] of Object.entries(handlers)) {
      socket.on(event, (payload, ack) => reply(socket, event, ack, handler(socket, payload)));
    }
    socket.on("disconnect", () => {
      for (const room of [...socket.data.rooms]) leaveRoom(socket, room, "left");
    });
  });
  httpServer.listen(opts.port, opts.host, () => {
    const { address, port } = httpServer.address();
    process.stdout.write(`listening on http://${address}:${port}\n`);
  });
  const stop = () => {
    io.close();
    httpServer.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main();
