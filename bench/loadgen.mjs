// Load generator for the signaling benchmark (issue 7).
//
// Drives one server over the official socket.io-client (websocket transport)
// through one scenario and prints one JSON line of results on stdout. Before
// that it may print "mark" lines ({"mark": NAME}) so that the Python driver
// can sample the server process (CPU time, RSS) at the right moments; after a
// mark with "wait": true it reads one line on stdin before going on.
//
// Scenarios:
//   windowed   pairs relay to their partner, W un-acked requests each, T s
//   ackpaced   the same with a window of one (next send on the ack)
//   signal     as windowed, with `signal` requests instead of `relay`
//   latency    fixed total rate R msg/s spread over the pairs; delivery p50/p99
//   idle       N idle connections (the driver reads the server's RSS)
//   bulk       16 KiB binary relays between pairs, W un-acked; MB/s
//   joinstorm  N connected peers all join N/2 rooms at once; join p50/p99
//
// Every message carries its sequence number; receivers count what arrived,
// duplicates and reorders per sender, and the result says whether anything
// acknowledged as delivered was lost.
//
// Usage: node loadgen.mjs --url http://127.0.0.1:PORT --scenario windowed
//          [--clients 200] [--window 16] [--duration 5] [--warmup 1]
//          [--rate 1000] [--size 16384] [--connections 2000] [--pad 64]
//          [--transport websocket|polling]

import { io } from "socket.io-client";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";

const DEFAULTS = {
  url: "http://127.0.0.1:8080",
  scenario: "windowed",
  clients: 200,
  window: 16,
  duration: 5,
  warmup: 1,
  rate: 1000,
  size: 16384,
  connections: 2000,
  base: 100,
  drain: 15,
  concurrency: 100,
  pad: 64,
  transport: "websocket",
};

// "websocket", or "polling" for clients that never upgrade.
let TRANSPORTS = ["websocket"];

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in DEFAULTS)) throw new Error(`unknown option --${key}`);
    const value = argv[i + 1];
    opts[key] = typeof DEFAULTS[key] === "number" ? Number(value) : value;
  }
  return opts;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// ---------------------------------------------------------------- driver I/O

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function emitLine(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Tell the driver where we are; with wait, block until it answers a line. */
async function mark(name, extra = {}, wait = false) {
  emitLine({ mark: name, wait, ...extra });
  if (wait) await Promise.race([stdinLines.next(), sleep(30000)]);
}

// ------------------------------------------------------------------ helpers

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
  return {
    count: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p90_ms: round(percentile(sorted, 90)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.length ? sorted[sorted.length - 1] : null),
  };
}

/** Connect one client over websocket; resolves with the socket. */
function connectOne(url) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: TRANSPORTS,
      forceNew: true,
      reconnection: false,
      timeout: 20000,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

/** Connect n clients, at most `concurrency` handshakes in flight. */
async function connectMany(url, n, concurrency) {
  const sockets = new Array(n);
  const times = [];
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      const t0 = now();
      sockets[i] = await connectOne(url);
      times.push(now() - t0);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { sockets, times };
}

function request(socket, event, payload) {
  return new Promise((resolve) => socket.emit(event, payload, resolve));
}

/** Per-client receive bookkeeping: which sequence numbers arrived, in what order. */
class Receiver {
  constructor() {
    this.seen = new Uint8Array(1024);
    this.maxSeq = -1;
    this.received = 0;
    this.unique = 0;
    this.duplicates = 0;
    this.reorders = 0;
    this.bytes = 0;
    this.corrupt = 0;
  }

  record(seq) {
    this.received++;
    if (seq >= this.seen.length) {
      const grown = new Uint8Array(Math.max(seq + 1, this.seen.length * 2));
      grown.set(this.seen);
      this.seen = grown;
    }
    if (this.seen[seq]) {
      this.duplicates++;
      return;
    }
    this.seen[seq] = 1;
    this.unique++;
    if (seq < this.maxSeq) this.reorders++;
    else this.maxSeq = seq;
  }
}

/** A client with its partner and its send/receive state. */
class Client {
  constructor(socket) {
    this.socket = socket;
    this.room = null;
    this.peerId = null;
    this.partner = null;
    this.seq = 0;
    this.inflight = 0;
    this.sent = 0;
    this.acked = 0;
    this.ackDelivered = 0;
    this.ackErrors = 0;
    this.errorCodes = {};
    this.rx = new Receiver();
  }

  /** True when a message claims to come from this client's partner in its room. */
  fromPartner(msg) {
    if (msg.from === this.partner.peerId && msg.room === this.room) return true;
    this.rx.corrupt++;
    return false;
  }

  onAck(ack) {
    this.inflight--;
    if (ack && ack.ok) {
      this.acked++;
      this.ackDelivered += ack.delivered ?? 1;
    } else {
      this.ackErrors++;
      const code = ack?.error?.code ?? "no-ack";
      this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
    }
  }
}

/** Connect 2*pairs clients and join them in rooms of two; returns the clients. */
async function setupPairs(opts, count, prefix) {
  const { sockets } = await connectMany(opts.url, count, opts.concurrency);
  const clients = sockets.map((s) => new Client(s));
  await Promise.all(
    clients.map(async (c, i) => {
      c.room = `${prefix}-${i >> 1}`;
      const ack = await request(c.socket, "join", { room: c.room });
      if (!ack?.ok) throw new Error(`join failed: ${JSON.stringify(ack)}`);
      c.peerId = ack.peerId;
    }),
  );
  for (let i = 0; i + 1 < clients.length; i += 2) {
    clients[i].partner = clients[i + 1];
    clients[i + 1].partner = clients[i];
  }
  return clients;
}

function closeAll(sockets) {
  for (const s of sockets) s.disconnect();
}

/** Sum the correctness counters of all clients; `drained`: all acks and relays came in. */
function correctness(clients, drained) {
  const sum = (f) => clients.reduce((acc, c) => acc + f(c), 0);
  const errorCodes = {};
  for (const c of clients) {
    for (const [k, v] of Object.entries(c.errorCodes)) errorCodes[k] = (errorCodes[k] ?? 0) + v;
  }
  const report = {
    sent: sum((c) => c.sent),
    acked_ok: sum((c) => c.acked),
    ack_errors: sum((c) => c.ackErrors),
    error_codes: errorCodes,
    ack_delivered: sum((c) => c.ackDelivered),
    received: sum((c) => c.rx.received),
    unique: sum((c) => c.rx.unique),
    duplicates: sum((c) => c.rx.duplicates),
    reorders: sum((c) => c.rx.reorders),
    corrupt: sum((c) => c.rx.corrupt),
  };
  report.lost = report.ack_delivered - report.unique;
  report.drained = drained;
  report.ok = drained &&
    report.lost === 0 && report.duplicates === 0 && report.reorders === 0 &&
    report.corrupt === 0 && report.ack_errors === 0 && report.sent === report.acked_ok;
  return report;
}

/** Wait until every request is acked and every acked message has arrived. */
async function drain(clients, seconds) {
  const deadline = now() + seconds * 1000;
  while (now() < deadline) {
    const pending = clients.some((c) => c.inflight > 0);
    const missing = clients.reduce((a, c) => a + c.ackDelivered, 0) -
      clients.reduce((a, c) => a + c.rx.unique, 0);
    if (!pending && missing <= 0) return true;
    await sleep(20);
  }
  return false;
}

/** Count deliveries between two marks, with the driver sampling the server. */
async function measureWindow(opts, clients, name) {
  await sleep(opts.warmup * 1000);
  const cpu0 = process.cpuUsage();
  const d0 = clients.reduce((a, c) => a + c.rx.unique, 0);
  const b0 = clients.reduce((a, c) => a + c.rx.bytes, 0);
  const t0 = now();
  await mark("measure-start", { scenario: name });
  await sleep(opts.duration * 1000);
  const t1 = now();
  await mark("measure-end", { scenario: name });
  const d1 = clients.reduce((a, c) => a + c.rx.unique, 0);
  const b1 = clients.reduce((a, c) => a + c.rx.bytes, 0);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (t1 - t0) / 1000;
  return {
    seconds,
    delivered: d1 - d0,
    bytes: b1 - b0,
    loadgen_cpu_util: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}

// ---------------------------------------------------------------- scenarios

/**
 * JSON messages to the partner keeping `window` requests un-acked per client;
 * `kind` is "relay" or "signal" (same shape but for the event name).
 */
async function windowed(opts, window, name, kind = "relay") {
  const clients = await setupPairs(opts, opts.clients, name);
  let running = true;
  const pad = "x".repeat(64);
  for (const c of clients) {
    c.socket.on(kind, (msg) => {
      if (c.fromPartner(msg)) c.rx.record(msg.data.s);
    });
  }
  const pump = (c) => {
    while (running && c.inflight < window) {
      c.inflight++;
      c.sent++;
      const data = { s: c.seq++, t: now(), pad };
      const payload = kind === "relay"
        ? { room: c.room, to: c.partner.peerId, event: "bench", data }
        : { room: c.room, to: c.partner.peerId, data };
      c.socket.emit(kind, payload, (ack) => {
        c.onAck(ack);
        pump(c);
      });
    }
  };
  clients.forEach(pump);
  const win = await measureWindow(opts, clients, name);
  running = false;
  const drained = await drain(clients, opts.drain);
  closeAll(clients.map((c) => c.socket));
  return {
    clients: clients.length,
    kind,
    window,
    msgs_per_s: win.delivered / win.seconds,
    seconds: win.seconds,
    loadgen_cpu_util: win.loadgen_cpu_util,
    drained,
    correctness: correctness(clients, drained),
  };
}

/** Open-loop relays at a fixed total rate; latency from send to delivery. */
async function latency(opts) {
  const name = `latency-${opts.rate}`;
  const pad = "x".repeat(opts.pad);
  const clients = await setupPairs(opts, opts.clients, "lat");
  const samples = [];
  let recording = false;
  for (const c of clients) {
    c.socket.on("relay", (msg) => {
      if (!c.fromPartner(msg)) return;
      c.rx.record(msg.data.s);
      if (recording) samples.push(now() - msg.data.t);
    });
  }
  const start = now();
  let sentTotal = 0;
  let rr = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    const due = Math.floor(((now() - start) / 1000) * opts.rate) - sentTotal;
    for (let k = 0; k < due; k++) {
      const c = clients[rr];
      rr = (rr + 1) % clients.length;
      c.inflight++;
      c.sent++;
      sentTotal++;
      const data = { s: c.seq++, t: now(), pad };
      c.socket.emit("relay", { room: c.room, to: c.partner.peerId, event: "bench", data }, (ack) =>
        c.onAck(ack),
      );
    }
    setTimeout(tick, 1);
  };
  tick();
  await sleep(opts.warmup * 1000);
  recording = true;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const s0 = sentTotal;
  await mark("measure-start", { scenario: name });
  await sleep(opts.duration * 1000);
  await mark("measure-end", { scenario: name });
  recording = false;
  const seconds = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  running = false;
  const drained = await drain(clients, opts.drain);
  closeAll(clients.map((c) => c.socket));
  return {
    clients: clients.length,
    target_rate: opts.rate,
    achieved_rate: (sentTotal - s0) / seconds,
    latency: summarize(samples),
    seconds,
    loadgen_cpu_util: (cpu.user + cpu.system) / 1e6 / seconds,
    drained,
    correctness: correctness(clients, drained),
  };
}

/** Bulk binary relays of `size` bytes, each stamped with its sequence number. */
async function bulk(opts) {
  const clients = await setupPairs(opts, opts.clients, "bulk");
  const size = opts.size;
  let running = true;
  for (const c of clients) {
    c.socket.on("relay", (msg) => {
      if (!c.fromPartner(msg)) return;
      const buf = msg.data;
      if (!Buffer.isBuffer(buf) || buf.length !== size) {
        c.rx.corrupt++;
        return;
      }
      const seq = buf.readUInt32LE(0);
      if (buf.readUInt32LE(size - 4) !== seq || buf[size >> 1] !== (seq & 0xff)) c.rx.corrupt++;
      c.rx.record(seq);
      c.rx.bytes += size;
    });
  }
  const pump = (c) => {
    while (running && c.inflight < opts.window) {
      c.inflight++;
      c.sent++;
      const seq = c.seq++;
      const buf = Buffer.allocUnsafe(size).fill(seq & 0xff);
      buf.writeUInt32LE(seq, 0);
      buf.writeUInt32LE(seq, size - 4);
      c.socket.emit("relay", { room: c.room, to: c.partner.peerId, event: "blob", data: buf }, (ack) => {
        c.onAck(ack);
        pump(c);
      });
    }
  };
  clients.forEach(pump);
  const win = await measureWindow(opts, clients, "bulk");
  running = false;
  const drained = await drain(clients, opts.drain);
  closeAll(clients.map((c) => c.socket));
  return {
    clients: clients.length,
    window: opts.window,
    size,
    mb_per_s: win.bytes / win.seconds / 1e6,
    msgs_per_s: win.delivered / win.seconds,
    seconds: win.seconds,
    loadgen_cpu_util: win.loadgen_cpu_util,
    drained,
    correctness: correctness(clients, drained),
  };
}

/** Hold N idle connections while the driver reads the server's memory. */
async function idle(opts) {
  const base = Math.min(opts.base, opts.connections);
  const first = await connectMany(opts.url, base, opts.concurrency);
  await sleep(300);
  await mark("idle-base", { connections: base }, true);
  const t0 = now();
  const rest = await connectMany(opts.url, opts.connections - base, opts.concurrency);
  const connectSeconds = (now() - t0) / 1000;
  await sleep(700);
  const sockets = [...first.sockets, ...rest.sockets];
  const connected = sockets.filter((s) => s.connected).length;
  await mark("idle-ready", { connections: sockets.length, connected }, true);
  closeAll(sockets);
  return {
    connections: sockets.length,
    base,
    connected,
    connect_per_s: (opts.connections - base) / connectSeconds,
    connect_latency: summarize(rest.times),
    correctness: { ok: connected === sockets.length, connected, expected: sockets.length },
  };
}

/** N connected peers all send `join` at once into N/2 rooms. */
async function joinstorm(opts) {
  const n = opts.connections;
  const t0 = now();
  const { sockets, times } = await connectMany(opts.url, n, opts.concurrency);
  const connectSeconds = (now() - t0) / 1000;
  let peerJoined = 0;
  for (const s of sockets) s.on("peer-joined", () => peerJoined++);
  await mark("measure-start", { scenario: "joinstorm" });
  const start = now();
  // All requests go out at once, in bursts of 50 with a turn of the event loop
  // in between so that acks are timed as they arrive, not after the last send.
  const pending = [];
  for (let i = 0; i < n; i++) {
    const t = now();
    pending.push(
      request(sockets[i], "join", { room: `storm-${i >> 1}` }).then((ack) => ({ ack, ms: now() - t })),
    );
    if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
  }
  const results = await Promise.all(pending);
  const total = (now() - start) / 1000;
  await mark("measure-end", { scenario: "joinstorm" });
  await sleep(200);
  const okCount = results.filter((r) => r.ack?.ok).length;
  const peersListed = results.reduce((a, r) => a + (r.ack?.peers?.length ?? 0), 0);
  const rooms = Math.ceil(n / 2);
  const pairs = Math.floor(n / 2);
  closeAll(sockets);
  return {
    connections: n,
    rooms,
    connect_per_s: n / connectSeconds,
    connect_latency: summarize(times),
    join_latency: summarize(results.map((r) => r.ms)),
    joins_per_s: n / total,
    seconds: total,
    correctness: {
      ok: okCount === n && peersListed === pairs && peerJoined === pairs,
      joined: okCount,
      expected: n,
      peers_listed: peersListed,
      peer_joined_events: peerJoined,
      expected_pairs: pairs,
    },
  };
}

// --------------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  TRANSPORTS = [opts.transport];
  const started = now();
  let result;
  switch (opts.scenario) {
    case "windowed":
      result = await windowed(opts, opts.window, "windowed");
      break;
    case "ackpaced":
      result = await windowed(opts, 1, "ackpaced");
      break;
    case "signal":
      result = await windowed(opts, opts.window, "signal", "signal");
      break;
    case "latency":
      result = await latency(opts);
      break;
    case "bulk":
      result = await bulk(opts);
      break;
    case "idle":
      result = await idle(opts);
      break;
    case "joinstorm":
      result = await joinstorm(opts);
      break;
    default:
      throw new Error(`unknown scenario ${opts.scenario}`);
  }
  emitLine({ result: { scenario: opts.scenario, wall_s: (now() - started) / 1000, ...result } });
  await sleep(100);
  process.exit(0);
}

// A scenario ends on its own; this stops one that hangs: 5 minutes, or its
// planned time plus 2 minutes when that is longer.
const planned = parseArgs(process.argv.slice(2));
const watchdogSeconds = Math.max(300, planned.duration + planned.warmup + planned.drain + 120);
const watchdog = setTimeout(() => {
  emitLine({ error: "loadgen watchdog: scenario took too long" });
  process.exit(3);
}, watchdogSeconds * 1000);
watchdog.unref();

main().catch((err) => {
  emitLine({ error: String(err?.stack ?? err) });
  process.exit(1);
});
