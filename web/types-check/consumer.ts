// A small app written against the published package: `tsc --noEmit` checks
// that the types describe the whole API (tests/web/test_npm_package.py).
import {
  Peer,
  PEER_EVENTS,
  RESERVED_EVENTS,
  RequestError,
  ReservedEventError,
  SignalingError,
  type PathInfo,
  type PeerInfo,
} from "rtc-signaling-peer";

export async function main(): Promise<void> {
  const peer = new Peer("https://example.test", "lobby", {
    meta: { name: "ada" },
    webrtc: true,
    reconnect: true,
    secret: "correct horse battery staple",
    maxFileBytes: 1 << 20,
    acceptFile: (_sender, name, size) => name.endsWith(".txt") && size < 1000,
  });
  await peer.connect();
  const me: string | null = peer.id;
  const others: Map<string, PeerInfo> = peer.peers;
  const stop = peer.on("peer-joined", (peerId, info) => console.log(peerId, info.meta, info.webrtc));
  stop();
  peer.on("peer-updated", (peerId: string, info: PeerInfo) => console.log(peerId, info.meta));
  peer.on("upgrade", (peerId: string) => console.log(peerId));
  peer.on("file", (sender, file) => console.log(sender, file.name, file.sha256, file.size));
  peer.on("signaling", (state) => console.log(state === "resumed"));
  peer.on("chat", (sender, data) => console.log(sender, data));
  await peer.emit("chat", { text: "hi", n: [1, null] });
  await peer.emit("blob", new Uint8Array([1, 2]), { to: "someone" });
  await peer.emit("pos", { x: 1, y: 2 }, { reliable: false });
  peer.handle("sum", (_sender, data) => (Array.isArray(data) ? data.length : 0));
  peer.handle("slow", async () => "done");
  peer.handle("sum", null);
  try {
    const total = await peer.request<number>("someone", "sum", [1, 2], { timeout: 5 });
    console.log(total + 1);
  } catch (err) {
    if (err instanceof RequestError) console.log(err.code === "timeout", err.detail);
    if (err instanceof SignalingError) console.log(err.code);
    if (err instanceof ReservedEventError) console.log(err.code);
  }
  await peer.updateMeta({ name: "ada", muted: true });
  const path: PathInfo = await peer.path("someone");
  console.log(path.transport, path.candidate, path.rttMs, peer.transport("someone"), peer.undecryptable);
  const sent = await peer.sendFile("someone", new Blob(["x"]), { name: "x.txt" });
  console.log(sent.sha256, me, others.size, PEER_EVENTS.length, RESERVED_EVENTS.includes("file"));
  await peer.close();
}

// Mistakes the types must catch:
// @ts-expect-error a library event's handler gets (peerId, info), not a number
new Peer("u", "r").on("peer-joined", (peerId: number) => peerId);
// @ts-expect-error functions are not data
void new Peer("u", "r").emit("x", () => 1);
// @ts-expect-error path() is async in the browser
const wrong: PathInfo = new Peer("u", "r").path("x");
void wrong;
