// One official socket.io-client peer, driven by tests/interop/test_node_client.py.
//
//   node node_peer.mjs URL ROOM MODE COUNT
//
// MODE is websocket | polling | upgrade. The peer joins ROOM, where a Python
// client already waits, sends it COUNT numbered relays without waiting for
// acks (so polling batches them), then one relay with binary nested in an
// object, echoes back the binary the Python side sends it, and prints one
// JSON line describing what it saw.
import { io } from "socket.io-client";
import { createHash } from "node:crypto";

const [url, room, mode, countText] = process.argv.slice(2);
const count = Number(countText);
const transports = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] }[mode];
const socket = io(url, { transports, reconnection: false, upgrade: mode === "upgrade" });
const result = { mode, acks: 0, errors: [], upgraded: false };
const fail = (why) => { console.log(JSON.stringify({ ...result, fatal: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 30000).unref();

socket.io.engine.on("upgrade", () => { result.upgraded = true; });
socket.on("connect_error", (err) => fail(`connect_error ${err.message} ${JSON.stringify(err.data)}`));

const call = (event, payload) => new Promise((resolve) => socket.emit(event, payload, resolve));

socket.on("relay", async (msg) => {
  if (msg.event !== "bin") return;
  const blob = msg.data.blob;
  result.receivedBinaryType = Buffer.isBuffer(blob) ? "Buffer" : typeof blob;
  const digest = createHash("sha256").update(blob).digest("hex");
  const ack = await call("relay", { room, to: msg.from, event: "echo", data: { sha256: digest, blob } });
  if (!ack.ok) result.errors.push(ack.error);
  result.transport = socket.io.engine.transport.name;
  console.log(JSON.stringify(result));
  socket.disconnect();
  process.exit(0);
});

socket.on("connect", async () => {
  const joined = await call("join", { room, meta: { client: "node" } });
  if (!joined.ok) fail(JSON.stringify(joined));
  result.peerId = joined.peerId;
  const target = joined.peers[0].peerId;
  if (mode === "upgrade" && !result.upgraded) {
    await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
  }
  const acks = [];
  for (let n = 0; n < count; n++) {
    acks.push(call("relay", { room, to: target, event: "n", data: n }));
  }
  const nested = { label: "nested", bytes: Uint8Array.from({ length: 256 }, (_, i) => i), deep: [{ buf: Buffer.from("héllo") }] };
  acks.push(call("relay", { room, to: target, event: "nested", data: nested }));
  for (const ack of await Promise.all(acks)) {
    if (ack.ok) result.acks += 1; else result.errors.push(ack.error);
  }
  await call("relay", { room, to: target, event: "sent", data: result.acks });
});
