"""Server-blind rooms: what a Peer with a ``secret`` sends through the server, sealed.

Mirrors ``web/static/lib/sealing.js``; both are checked against
``tests/fixtures/peer-sealed.json``. Design and threat model: docs/security.md,
"Server-blind rooms".

- Key: PBKDF2-HMAC-SHA256 over the UTF-8 secret, salt ``SALT_PREFIX`` + the
  UTF-8 room name, :data:`KDF_ITERATIONS` rounds, 32 bytes: an AES-256-GCM
  key per (secret, room). Deliberately slow (a guess at the secret costs the
  same), so it is derived once per process and (secret, room) and off the loop.
- Sealed message: ``VERSION`` (1 byte) | nonce (12 random bytes) | AES-GCM
  ciphertext with its 16-byte tag.
- Associated data: ``"rtc-peer sealed v1"``, the kind (``relay`` or
  ``signal``), the room, the sender's peerId and the recipient's peerId,
  each followed by a NUL. The server stamps ``from`` itself, so a message
  replayed as another sender's, to another peer, into another room or as the
  other kind does not open.

Everything here is pure: the caller supplies the ids and counts what fails.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets as _random
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import PeerError

KDF_ITERATIONS = 600_000
SALT_PREFIX = b"rtc-peer room key v1\x00"
VERSION = 1
NONCE_BYTES = 12
TAG_BYTES = 16
SEALED_EVENT = "rtc-peer.sealed"
"""The relay event that carries sealed frames (instead of ``rtc-peer.frame``)."""
SEALED_KEY = "sealed"
"""A sealed ``signal``'s data is ``{"sealed": <base64url of the sealed JSON>}``."""

Kind = Literal["relay", "signal"]


class SealError(PeerError):
    """A sealed message that does not open: wrong key, tampered, or replayed elsewhere."""


@functools.lru_cache(maxsize=16)
def derive_key(secret: str, room: str) -> bytes:
    """The room key (slow on purpose: run it in a thread)."""
    salt = SALT_PREFIX + room.encode()
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, KDF_ITERATIONS, 32)


def associated_data(kind: Kind, room: str, sender: str, recipient: str) -> bytes:
    return b"".join(part.encode() + b"\x00" for part in ("rtc-peer sealed v1", kind, room, sender, recipient))


class Sealer:
    """Seal and open with one room key."""

    def __init__(self, key: bytes, room: str) -> None:
        self._aead = AESGCM(key)
        self.room = room

    def seal(
        self, plaintext: bytes, kind: Kind, sender: str, recipient: str, *, nonce: bytes | None = None
    ) -> bytes:
        nonce = _random.token_bytes(NONCE_BYTES) if nonce is None else nonce
        aad = associated_data(kind, self.room, sender, recipient)
        return bytes([VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, kind: Kind, sender: str, recipient: str) -> bytes:
        """The plaintext; raises SealError for anything that does not open."""
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[0] != VERSION:
            raise SealError("not a sealed message of a known version")
        nonce = sealed[1 : 1 + NONCE_BYTES]
        aad = associated_data(kind, self.room, sender, recipient)
        try:
            return self._aead.decrypt(nonce, sealed[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealError("does not open with this room's key") from None

    def seal_signal(self, data: dict[str, Any], sender: str, recipient: str) -> dict[str, Any]:
        plaintext = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self.seal(plaintext, "signal", sender, recipient)
        return {SEALED_KEY: base64.urlsafe_b64encode(sealed).decode().rstrip("=")}

    def open_signal(self, data: dict[str, Any], sender: str, recipient: str) -> dict[str, Any]:
        text = data.get(SEALED_KEY)
        if not isinstance(text, str) or len(data) != 1:
            raise SealError("signal data is not sealed")
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raise SealError("sealed signal is not base64url") from None
        try:
            opened = json.loads(self.open(sealed, "signal", sender, recipient))
        except (UnicodeDecodeError, ValueError):
            raise SealError("sealed signal is not a JSON object") from None
        if not isinstance(opened, dict):
            raise SealError("sealed signal is not a JSON object")
        return opened
