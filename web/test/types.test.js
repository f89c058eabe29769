// rtc-peer.d.ts describes what rtc-peer.js exports: the same names, and every
// method it declares on Peer exists. (tsc checks a consumer against the types:
// tests/web/test_npm_package.py.)
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const dts = readFileSync(new URL("../static/rtc-peer.d.ts", import.meta.url), "utf-8");

test("the declared exports are the module's exports", async () => {
  const module = await import("../static/rtc-peer.js");
  const declared = [...dts.matchAll(/^export declare (?:class|const) (\w+)/gm)].map((m) => m[1]).sort();
  const runtime = Object.keys(module).sort();
  assert.deepEqual(declared, runtime);
});

test("every method declared on Peer exists", async () => {
  const { Peer } = await import("../static/rtc-peer.js");
  const body = dts.slice(dts.indexOf("export declare class Peer"));
  const methods = [...body.matchAll(/^ {2}(\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]);
  assert.ok(methods.length >= 15, methods.join());
  for (const name of methods) assert.equal(typeof Peer.prototype[name], "function", name);
});
