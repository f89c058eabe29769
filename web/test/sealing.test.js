// lib/sealing.js against the golden vectors peer/sealing.py also checks.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  KDF_ITERATIONS, SALT_PREFIX, SEALED_EVENT, SealError, Sealer, associatedData, deriveKeyBytes,
} from "../static/lib/sealing.js";
import { fromHex, toHex } from "./vectors.js";

const V = JSON.parse(readFileSync(new URL("../../tests/fixtures/peer-sealed.json", import.meta.url), "utf-8"));
const sealerPromise = Sealer.create(V.secret, V.room);

test("KDF parameters and key", async () => {
  assert.equal(KDF_ITERATIONS, V.iterations);
  assert.equal(toHex(new TextEncoder().encode(SALT_PREFIX)), V.saltPrefix);
  assert.equal(SEALED_EVENT, V.sealedEvent);
  assert.equal(toHex(await deriveKeyBytes(V.secret, V.room)), V.key);
});

for (const v of V.sealed) {
  test(`golden sealed message: ${v.name}`, async () => {
    const sealer = await sealerPromise;
    assert.equal(toHex(associatedData(v.kind, V.room, v.from, v.to)), v.aad);
    const sealed = await sealer.seal(fromHex(v.plaintext), v.kind, v.from, v.to, { nonce: fromHex(v.nonce) });
    assert.equal(toHex(sealed), v.sealed);
    assert.equal(toHex(await sealer.open(fromHex(v.sealed), v.kind, v.from, v.to)), v.plaintext);
  });
}

test("nothing opens elsewhere", async () => {
  const sealer = await sealerPromise;
  const sealed = await sealer.seal(new TextEncoder().encode("frames"), "relay", "alice", "bob");
  for (const [kind, from, to] of [["relay", "carol", "bob"], ["relay", "alice", "carol"], ["signal", "alice", "bob"]]) {
    await assert.rejects(sealer.open(sealed, kind, from, to), SealError);
  }
  const tampered = sealed.slice();
  tampered[tampered.length - 1] ^= 1;
  for (const bad of [tampered, sealed.subarray(0, 20), new Uint8Array(0)]) {
    await assert.rejects(sealer.open(bad, "relay", "alice", "bob"), SealError);
  }
});

test("signals round trip and the clear is refused", async () => {
  const sealer = await sealerPromise;
  const data = { type: "offer", sdp: "v=0\r\n" };
  const sealed = await sealer.sealSignal(data, "alice", "bob");
  assert.deepEqual(Object.keys(sealed), ["sealed"]);
  assert.deepEqual(await sealer.openSignal(sealed, "alice", "bob"), data);
  for (const bad of [data, { sealed: "!!" }, { sealed: sealed.sealed, x: 1 }, { sealed: 5 }]) {
    await assert.rejects(sealer.openSignal(bad, "alice", "bob"), SealError);
  }
});
