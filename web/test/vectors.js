// Shared by the *.test.js files: the golden vectors of tests/fixtures/ (also
// loaded by the Python tests) and their conversion into frame objects.

import { readFileSync } from "node:fs";
import {
  Ack,
  FileCancel,
  FileChunk,
  FileEnd,
  FileOffer,
  FileResult,
  MessagePart,
  Sequenced,
} from "../static/lib/framing.js";

export const VECTORS = JSON.parse(
  readFileSync(new URL("../../tests/fixtures/peer-wire.json", import.meta.url), "utf-8"),
);

export function fromHex(hex) {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

export function frameFromVector(o) {
  switch (o.kind) {
    case "ack":
      return new Ack(o.ack);
    case "message-part":
      return new Sequenced(
        o.seq,
        new MessagePart(o.event, fromHex(o.payload), o.binary, o.more, o.request ?? null, o.response ?? null, o.error ?? null),
      );
    case "file-offer":
      return new Sequenced(o.seq, new FileOffer(o.id, o.name, o.size, o.chunkSize));
    case "file-chunk":
      return new Sequenced(o.seq, new FileChunk(o.id, o.index, fromHex(o.payload)));
    case "file-end":
      return new Sequenced(o.seq, new FileEnd(o.id, o.sha256));
    case "file-result":
      return new Sequenced(o.seq, new FileResult(o.id, o.ok, o.sha256));
    case "file-cancel":
      return new Sequenced(o.seq, new FileCancel(o.id, o.reason));
    default:
      throw new Error(`unknown kind ${o.kind}`);
  }
}
