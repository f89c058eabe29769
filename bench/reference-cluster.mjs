// Cross-node anchor for bench.cluster: Node socket.io 4.8 with the official
// Redis streams adapter (@socket.io/redis-streams-adapter, the one that does
// not lose messages across a short Redis or network blip), several processes
// on one Redis. It speaks the subset of the signaling contract bench.cluster
// drives (join, relay with or without `to`, signal) with the same acks.
//
// What it does not do, so it does less work per message than our server:
// no cross-node membership check of `to` (a message goes to the peer's own
// socket.io room, wherever it is), no resume, no mailboxes, no rate limits.
//
// Usage: node reference-cluster.mjs --redis redis://127.0.0.1:6379/0 [--host 127.0.0.1] [--port 0]
// Prints `listening on http://HOST:PORT` once ready; stops on SIGINT/SIGTERM.

import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const EVENT_RE = /^[^\u0000-\u001f\u007f-\u009f]{1,64}$/;
const MAX_RELAY_BYTES = 1024 * 1024;

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 0, redis: "redis://127.0.0.1:6379/0" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    opts[key] = key === "port" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

const fail = (code, message) => ({ ok: false, error: { code, message } });
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const peerRoom = (peerId) => `peer:${peerId}`;

async function onJoin(io, socket, payload) {
  if (!isObject(payload) || typeof payload.room !== "string" || !ROOM_RE.test(payload.room)) {
    return fail("invalid-payload", "room must be 1-64 characters of A-Z a-z 0-9 _ . -");
  }
  const room = payload.room;
  if (!socket.data.rooms.has(room)) {
    socket.data.meta = isObject(payload.meta) ? payload.meta : {};
    socket.data.webrtc = payload.webrtc !== false;
    socket.data.rooms.add(room);
    socket.join(room);
    socket.to(room).emit("peer-joined", {
      room, peerId: socket.data.peerId, meta: socket.data.meta, webrtc: socket.data.webrtc,
    });
  }
  const everyone = await io.in(room).fetchSockets();
  const peers = everyone
    .filter((s) => s.data.peerId !== socket.data.peerId)
    .map((s) => ({ peerId: s.data.peerId, meta: s.data.meta, webrtc: s.data.webrtc }));
  return {
    ok: true, room, peerId: socket.data.peerId, peers, iceServers: [],
    resumeToken: socket.data.resumeToken,
  };
}

function check(socket, payload) {
  if (!isObject(payload) || typeof payload.room !== "string" || !ROOM_RE.test(payload.room)) {
    return fail("invalid-payload", "bad room");
  }
  if (!socket.data.rooms.has(payload.room)) return fail("not-in-room", "not in that room");
  if (payload.to !== undefined && (typeof payload.to !== "string" || payload.to === socket.data.peerId)) {
    return fail("unknown-peer", "no such peer in room");
  }
  return null;
}

function onSignal(io, socket, payload) {
  const bad = check(socket, payload);
  if (bad) return bad;
  if (payload.to === undefined || !isObject(payload.data)) return fail("invalid-payload", "signal needs to and data");
  if (JSON.stringify(payload.data).length > 65536) return fail("payload-too-large", "data");
  io.to(peerRoom(payload.to)).emit("signal", { room: payload.room, from: socket.data.peerId, data: payload.data });
  return { ok: true };
}

function onRelay(io, socket, payload) {
  const bad = check(socket, payload);
  if (bad) return bad;
  if (typeof payload.event !== "string" || !EVENT_RE.test(payload.event)) {
    return fail("invalid-payload", "bad event name");
  }
  const data = payload.data;
  const size = Buffer.isBuffer(data) ? data.length : JSON.stringify(data ?? null).length;
  if (size > MAX_RELAY_BYTES) return fail("payload-too-large", "data");
  const msg = { room: payload.room, from: socket.data.peerId, event: payload.event, data };
  if (payload.to !== undefined) {
    io.to(peerRoom(payload.to)).emit("relay", msg);
    return { ok: true, delivered: 1 };
  }
  socket.to(payload.room).emit("relay", msg);
  return { ok: true };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const redisClient = createClient({ url: opts.redis });
  await redisClient.connect();
  const httpServer = createServer((req, res) => res.writeHead(404).end());
  const io = new Server(httpServer, {
    adapter: createAdapter(redisClient),
    maxHttpBufferSize: MAX_RELAY_BYTES + 64 * 1024,
    perMessageDeflate: false,
  });
  const handlers = { join: onJoin, signal: onSignal, relay: onRelay };
  io.on("connection", (socket) => {
    socket.data.peerId = randomBytes(12).toString("base64url");
    socket.data.resumeToken = randomBytes(24).toString("base64url");
    socket.data.rooms = new Set();
    socket.join(peerRoom(socket.data.peerId));
    for (const [event, handler] of Object.entries(handlers)) {
      socket.on(event, async (payload, ack) => {
        const result = await handler(io, socket, payload);
        if (typeof ack === "function") ack(result);
      });
    }
    socket.on("disconnect", () => {
      for (const room of socket.data.rooms) {
        socket.to(room).emit("peer-left", { room, peerId: socket.data.peerId, reason: "left" });
      }
    });
  });
  httpServer.listen(opts.port, opts.host, () => {
    const { address, port } = httpServer.address();
    process.stdout.write(`listening on http://${address}:${port}\n`);
  });
  const stop = () => {
    io.close();
    redisClient.quit().catch(() => {});
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main();
