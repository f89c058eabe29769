// F7: one official socket.io-client (polling, allowed to upgrade) whose
// websocket upgrade is broken by a proxy; driven by test_upgrade_failing.py.
//
//   node node_upgrade.mjs URL ROOM COUNT
//
// It joins ROOM, then sends COUNT numbered relays (with acks, 20 ms apart,
// so they span the failed probe) to every other peer, and collects the
// numbered relays the others send it until it has COUNT of them. Prints one
// JSON line: acks, received sequence numbers, the transport at the end.
import { createRequire } from "node:module";

const require = createRequire(new URL("../interop/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [url, room, countText] = process.argv.slice(2);
const count = Number(countText);
const socket = io(url, { transports: ["polling", "websocket"], reconnection: false });
const result = { acked: 0, failed: [], received: [], upgraded: false, probeErrors: 0 };
const fail = (why) => { console.log(JSON.stringify({ ...result, fatal: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 40000).unref();

socket.io.engine.on("upgrade", () => { result.upgraded = true; });
socket.io.engine.on("upgradeError", () => { result.probeErrors += 1; });
socket.on("connect_error", (err) => fail(`connect_error ${err.message}`));
socket.on("disconnect", (reason) => { if (!result.done) fail(`disconnected: ${reason}`); });

const call = (event, payload) => new Promise((resolve) => socket.emit(event, payload, resolve));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let sendsDone = false;

const finish = () => {
  if (!sendsDone || result.received.length < count) return;
  result.done = true;
  result.transport = socket.io.engine.transport.name;
  console.log(JSON.stringify(result));
  socket.disconnect();
  process.exit(0);
};

socket.on("relay", (msg) => {
  if (msg.event !== "seq") return;
  result.received.push(msg.data.n);
  finish();
});

socket.on("connect", async () => {
  const joined = await call("join", { room });
  if (!joined.ok) fail(`join ${JSON.stringify(joined.error)}`);
  result.peerId = joined.peerId;
  for (let n = 0; n < count; n++) {
    const ack = await call("relay", { room, event: "seq", data: { n } });
    if (ack.ok && ack.delivered === 1) result.acked += 1; else result.failed.push(n);
    await sleep(20);
  }
  result.transportAfterSends = socket.io.engine.transport.name;
  sendsDone = true;
  finish();
});
