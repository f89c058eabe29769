// File transfers of one Peer: reads a File chunk by chunk into the session
// (waiting while the send buffer or the data channel is full), reassembles
// incoming files, checks SHA-256 both ways. The pure parts (chunks, hashing,
// the verdict) are in files.js; this is their owner, like peer/transfers.py.
//
// An incoming file is held in memory until it is whole, so what one sender may
// cost is bounded before a byte arrives, as in the Python Peer: at most
// MAX_INCOMING_PER_SENDER files from one sender at once, none over maxFileBytes
// or MAX_RECEIVE_BYTES, all of them together within MAX_RECEIVE_TOTAL_BYTES
// (the browser's "free space"), and acceptFile(senderId, name, size) may refuse
// any. A refused offer is answered with a FileCancel that says why.

import { FileCancel, FileChunk, FileEnd, FileOffer, FileResult } from "./framing.js";
import { FileReceiver, FileSender, FileTransferError, HashMismatch, newFileId, safeFilename } from "./files.js";

/** Bytes read from the File at once (then cut into chunks). */
const READ_BYTES = 1024 * 1024;
/** Largest file accepted from a peer (kept in memory until it is whole). */
export const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;
/** Bytes all incoming files together may hold in memory at once. */
export const MAX_RECEIVE_TOTAL_BYTES = 512 * 1024 * 1024;
/** Files one sender may have in flight towards this peer at once (contract v1.1). */
export const MAX_INCOMING_PER_SENDER = 4;

function transferError(code, message) {
  const err = new FileTransferError(message);
  err.code = code;
  return err;
}

export class FileTransfers {
  /**
   * @param {import("../rtc-peer.js").Peer} peer
   * @param {{maxFileBytes?: number|null, acceptFile?: ((senderId: string, name: string, size: number) => boolean)|null}} [options]
   */
  constructor(peer, { maxFileBytes = null, acceptFile = null } = {}) {
    if (maxFileBytes !== null && !(Number.isSafeInteger(maxFileBytes) && maxFileBytes >= 0)) {
      throw new TypeError(`maxFileBytes must be a whole number of bytes, not ${maxFileBytes}`);
    }
    this.peer = peer;
    this.maxFileBytes = maxFileBytes;
    this.acceptFile = acceptFile;
    /** id -> {peerId, sender, resolve, reject, cancelled} */
    this.outgoing = new Map();
    /** `${peerId}/${id}` -> {receiver, chunks} */
    this.incoming = new Map();
  }

  handles(delivery) {
    return (
      delivery instanceof FileOffer ||
      delivery instanceof FileChunk ||
      delivery instanceof FileEnd ||
      delivery instanceof FileResult ||
      delivery instanceof FileCancel
    );
  }

  // -- sending -----------------------------------------------------------------

  async send(peerId, file, name) {
    const peer = this.peer;
    const link = peer._link(peerId);
    const id = newFileId();
    const size = file.size;
    const progress = (done) =>
      peer._raise("file-progress", peerId, { id, name, size, done, direction: "send" });
    const sender = new FileSender(id, name, size);
    const done = new Promise((resolve, reject) => {
      this.outgoing.set(id, { peerId, sender, resolve, reject, cancelled: null });
    });
    done.catch(() => {}); // observed below; avoid an unhandled rejection meanwhile
    const entry = this.outgoing.get(id);
    try {
      await peer._whenRoom(link, () => link.sendBody(sender.offer));
      progress(0);
      let at = 0;
      while (sender.nextRead > 0) {
        const block = new Uint8Array(await file.slice(at, Math.min(size, at + READ_BYTES)).arrayBuffer());
        at += block.length;
        let offset = 0;
        while (offset < block.length) {
          if (entry.cancelled) throw entry.cancelled;
          const n = sender.nextRead;
          const body = sender.chunk(block.subarray(offset, offset + n));
          offset += n;
          await peer._whenRoom(link, () => link.sendBody(body));
          progress(sender.sent);
        }
      }
      if (entry.cancelled) throw entry.cancelled;
      const end = sender.end();
      await peer._whenRoom(link, () => link.sendBody(end));
      await done;
      return { id, name, size, sha256: end.sha256 };
    } catch (err) {
      if (this.outgoing.get(id) === entry && !entry.cancelled && !link.closed) {
        // Our side gave up: tell the receiver.
        try {
          link.sendBody(new FileCancel(id, String(err?.message ?? err).slice(0, 200)));
        } catch {
          /* the send buffer is full or the link is gone: the receiver times out with it */
        }
      }
      peer._raise("file-failed", peerId, { id, name, direction: "send", error: err });
      if (!err.code) err.code = err instanceof HashMismatch ? "hash-mismatch" : "file-failed";
      throw err;
    } finally {
      this.outgoing.delete(id);
    }
  }

  // -- receiving ---------------------------------------------------------------

  receive(peerId, body) {
    if (body instanceof FileResult) return this._onResult(body);
    if (body instanceof FileCancel) return this._onCancel(peerId, body);
    const key = `${peerId}/${body.id}`;
    if (body instanceof FileOffer) return this._onOffer(peerId, key, body);
    const entry = this.incoming.get(key);
    if (!entry) return; // a transfer we refused or already failed
    const { receiver, info } = entry;
    try {
      if (body instanceof FileChunk) {
        receiver.chunk(body);
        this.peer._raise("file-progress", peerId, { ...info, done: receiver.received, direction: "receive" });
        return;
      }
      // FileEnd
      const result = receiver.end(body);
      this.incoming.delete(key);
      this._reply(peerId, result);
      if (!result.ok) {
        const err = transferError("hash-mismatch", `SHA-256 ${result.sha256} differs from the sender's ${body.sha256}`);
        this.peer._raise("file-failed", peerId, { ...info, direction: "receive", error: err });
        return;
      }
      const file = new File(entry.chunks, safeFilename(info.name), { type: "application/octet-stream" });
      file.sha256 = result.sha256;
      file.transferId = info.id;
      this.peer._raise("file", peerId, file);
    } catch (err) {
      this.incoming.delete(key);
      this._reply(peerId, new FileCancel(body.id, String(err?.message ?? err).slice(0, 200)));
      this.peer._raise("file-failed", peerId, { ...info, direction: "receive", error: err });
    }
  }

  _onOffer(peerId, key, offer) {
    const info = { id: offer.id, name: offer.name, size: offer.size };
    const refusal = this._refusal(peerId, key, offer);
    if (refusal !== null) {
      this._reply(peerId, new FileCancel(offer.id, refusal.slice(0, 200)));
      return;
    }
    const chunks = [];
    const receiver = new FileReceiver(offer, (bytes) => chunks.push(bytes.slice()));
    this.incoming.set(key, { receiver, chunks, info });
    this.peer._raise("file-offer", peerId, info);
    this.peer._raise("file-progress", peerId, { ...info, done: 0, direction: "receive" });
  }

  /** Why an offer is refused, or null to take it; nothing is held yet. */
  _refusal(peerId, key, offer) {
    if (this.incoming.has(key)) return "a file with this id is already arriving";
    let fromSender = 0;
    let held = 0;
    for (const [other, entry] of this.incoming) {
      if (other.startsWith(`${peerId}/`)) fromSender += 1;
      held += entry.info.size;
    }
    if (fromSender >= MAX_INCOMING_PER_SENDER) {
      return `too many files at once: at most ${MAX_INCOMING_PER_SENDER} per sender`;
    }
    const limit = Math.min(this.maxFileBytes ?? Infinity, MAX_RECEIVE_BYTES);
    if (offer.size > limit) return `file of ${offer.size} bytes is over this peer's limit of ${limit}`;
    if (this.acceptFile) {
      let accepted = false;
      try {
        accepted = this.acceptFile(peerId, offer.name, offer.size) === true;
      } catch (err) {
        console.error("acceptFile failed; refusing the file", err);
      }
      if (!accepted) return "the receiver declined the file";
    }
    if (held + offer.size > MAX_RECEIVE_TOTAL_BYTES) {
      return `not enough space: ${offer.size} bytes offered, ${Math.max(MAX_RECEIVE_TOTAL_BYTES - held, 0)} free`;
    }
    return null;
  }

  _onResult(result) {
    const entry = this.outgoing.get(result.id);
    if (!entry) return;
    try {
      entry.sender.result(result);
      entry.resolve();
    } catch (err) {
      entry.reject(err);
    }
  }

  _onCancel(peerId, cancel) {
    const out = this.outgoing.get(cancel.id);
    if (out && out.peerId === peerId) {
      out.cancelled = transferError("file-cancelled", `the receiver cancelled: ${cancel.reason}`);
      out.reject(out.cancelled);
    }
    const key = `${peerId}/${cancel.id}`;
    const entry = this.incoming.get(key);
    if (entry) {
      this.incoming.delete(key);
      const err = transferError("file-cancelled", `the sender cancelled: ${cancel.reason}`);
      this.peer._raise("file-failed", peerId, { ...entry.info, direction: "receive", error: err });
    }
  }

  _reply(peerId, body) {
    const link = this.peer._links.get(peerId);
    if (!link) return;
    // Small control bodies: wait for room in the background if need be.
    this.peer._whenRoom(link, () => link.sendBody(body)).catch(() => {});
  }

  /** The peer left: every transfer with it fails. */
  dropPeer(peerId) {
    for (const entry of this.outgoing.values()) {
      if (entry.peerId === peerId && !entry.cancelled) {
        entry.cancelled = transferError("unknown-peer", `${peerId} left during the transfer`);
        entry.reject(entry.cancelled);
      }
    }
    for (const [key, entry] of this.incoming) {
      if (key.startsWith(`${peerId}/`)) {
        this.incoming.delete(key);
        const err = transferError("unknown-peer", `${peerId} left during the transfer`);
        this.peer._raise("file-failed", peerId, { ...entry.info, direction: "receive", error: err });
      }
    }
  }
}
