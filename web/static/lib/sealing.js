// Server-blind rooms: what a Peer with a `secret` sends through the server,
// sealed. Mirrors peer/sealing.py; both are checked against
// tests/fixtures/peer-sealed.json. Design and threat model: docs/security.md,
// "Server-blind rooms". WebCrypto needs a secure context (https, or
// http on localhost / a loopback address).
//
// - Key: PBKDF2-HMAC-SHA256(secret, SALT_PREFIX + room, KDF_ITERATIONS) -> AES-256-GCM.
// - Sealed message: VERSION (1 byte) | nonce (12 random bytes) | ciphertext + 16-byte tag.
// - Associated data: "rtc-peer sealed v1", kind ("relay" | "signal"), room,
//   sender peerId, recipient peerId, each followed by a NUL.

export const KDF_ITERATIONS = 600000;
export const SALT_PREFIX = "rtc-peer room key v1\0";
export const VERSION = 1;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** The relay event that carries sealed frames (instead of "rtc-peer.frame"). */
export const SEALED_EVENT = "rtc-peer.sealed";
/** A sealed signal's data is {sealed: <base64url of the sealed JSON>}. */
export const SEALED_KEY = "sealed";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A sealed message that does not open: wrong key, tampered, or replayed elsewhere. */
export class SealError extends Error {
  constructor(message) {
    super(message);
    this.name = "SealError";
  }
}

function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("a secret needs WebCrypto: serve the page over https (or from localhost)");
  return s;
}

/** The 32 key bytes (slow on purpose). */
export async function deriveKeyBytes(secret, room) {
  const material = await subtle().importKey("raw", encoder.encode(secret), "PBKDF2", false, ["deriveBits"]);
  const salt = encoder.encode(SALT_PREFIX + room);
  const bits = await subtle().deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: KDF_ITERATIONS },
    material,
    256,
  );
  return new Uint8Array(bits);
}

export function associatedData(kind, room, sender, recipient) {
  return encoder.encode(["rtc-peer sealed v1", kind, room, sender, recipient].map((p) => `${p}\0`).join(""));
}

export class Sealer {
  /** A Sealer for `room` with the key derived from `secret`. */
  static async create(secret, room) {
    const bytes = await deriveKeyBytes(secret, room);
    const key = await subtle().importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
    return new Sealer(key, room);
  }

  constructor(key, room) {
    this.key = key;
    this.room = room;
  }

  async seal(plaintext, kind, sender, recipient, { nonce = null } = {}) {
    const iv = nonce ?? globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const additionalData = associatedData(kind, this.room, sender, recipient);
    const ciphertext = new Uint8Array(
      await subtle().encrypt({ name: "AES-GCM", iv, additionalData }, this.key, plaintext),
    );
    const out = new Uint8Array(1 + NONCE_BYTES + ciphertext.length);
    out[0] = VERSION;
    out.set(iv, 1);
    out.set(ciphertext, 1 + NONCE_BYTES);
    return out;
  }

  /** The plaintext; rejects with SealError for anything that does not open. */
  async open(sealed, kind, sender, recipient) {
    if (!(sealed instanceof Uint8Array) || sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new SealError("not a sealed message of a known version");
    }
    const iv = sealed.subarray(1, 1 + NONCE_BYTES);
    const additionalData = associatedData(kind, this.room, sender, recipient);
    try {
      const plain = await subtle().decrypt(
        { name: "AES-GCM", iv, additionalData },
        this.key,
        sealed.subarray(1 + NONCE_BYTES),
      );
      return new Uint8Array(plain);
    } catch {
      throw new SealError("does not open with this room's key");
    }
  }

  async sealSignal(data, sender, recipient) {
    const sealed = await this.seal(encoder.encode(JSON.stringify(data)), "signal", sender, recipient);
    return { [SEALED_KEY]: toBase64Url(sealed) };
  }

  async openSignal(data, sender, recipient) {
    const text = data?.[SEALED_KEY];
    if (typeof text !== "string" || Object.keys(data).length !== 1) throw new SealError("signal data is not sealed");
    let sealed;
    try {
      sealed = fromBase64Url(text);
    } catch {
      throw new SealError("sealed signal is not base64url");
    }
    const plain = await this.open(sealed, "signal", sender, recipient);
    let opened;
    try {
      opened = JSON.parse(decoder.decode(plain));
    } catch {
      throw new SealError("sealed signal is not a JSON object");
    }
    if (!opened || typeof opened !== "object" || Array.isArray(opened)) {
      throw new SealError("sealed signal is not a JSON object");
    }
    return opened;
  }
}

export function toBase64Url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new SealError("not base64url");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
