// One official socket.io-client peer behind the tested nginx (tests/ops/test_deployment.py).
//
//   node node_deploy_peer.mjs URL ROOM MODE LOCAL_ADDRESS CA_FILE
//
// MODE is websocket | polling | upgrade. Connects from LOCAL_ADDRESS (nginx
// picks the node by client address), trusting CA_FILE; joins ROOM, relays
// "hello" to the other peer once it knows it, and once it has the other's
// hello (and, for upgrade, has upgraded) prints one JSON line and leaves.
import { io } from "socket.io-client";
import { Agent } from "node:https";
import { readFileSync } from "node:fs";

const [url, room, mode, localAddress, caFile] = process.argv.slice(2);
const ca = readFileSync(caFile);
const transports = { websocket: ["websocket"], polling: ["polling"], upgrade: ["polling", "websocket"] }[mode];
const agent = new Agent({ localAddress, ca, keepAlive: true });
const socket = io(url, { transports, upgrade: mode === "upgrade", reconnection: false, ca, agent, localAddress });
const state = { mode, upgraded: false, got: null, sent: false };
const fail = (why) => { console.log(JSON.stringify({ ...state, fatal: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 40000).unref();

const call = (event, payload) => new Promise((resolve) => socket.emit(event, payload, resolve));
let other = null;

const finish = () => {
  if (!state.got || !state.sent || (mode === "upgrade" && !state.upgraded)) return;
  state.transport = socket.io.engine.transport.name;
  console.log(JSON.stringify(state));
  socket.disconnect();
  setTimeout(() => process.exit(0), 200);
};

const greet = async () => {
  if (!other || state.sent) return;
  state.sent = "sending";
  const ack = await call("relay", { room, to: other, event: "hello", data: { mode, from: state.peerId } });
  if (!ack.ok) fail(JSON.stringify(ack));
  state.sent = true;
  finish();
};

socket.on("connect_error", (err) => fail(`connect_error ${err.message}`));
socket.io.engine.on("upgrade", () => { state.upgraded = true; finish(); });
socket.on("peer-joined", (msg) => { other = msg.peerId; greet(); });
socket.on("relay", (msg) => { if (msg.event === "hello") { state.got = msg.data; finish(); } });
socket.on("connect", async () => {
  const joined = await call("join", { room });
  if (!joined.ok) fail(JSON.stringify(joined));
  state.peerId = joined.peerId;
  console.log(JSON.stringify({ joined: joined.peerId }));
  if (joined.peers.length) { other = joined.peers[0].peerId; greet(); }
});
