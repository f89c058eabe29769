"""aiortc 1.16.0: check a remote DTLS fingerprint without parsing the certificate.

Upstream-ready description: ``RTCDtlsTransport._validate_peer_identity``
asks pyOpenSSL for the peer certificate as a ``cryptography`` object and
hashes that. ``cryptography`` refuses to parse X.509 version 2 certificates
("1 is not a valid X509 version"), which is what libdatachannel (so the
native engine, :mod:`peer.native`, and other libdatachannel peers) presents,
and the handshake task dies with that exception. A fingerprint is the hash
of the certificate's DER bytes (RFC 8122), so this hashes the DER taken from
OpenSSL directly; the comparison rules are aiortc's (every supported
fingerprint must match, at least one must be supported). A wrong
fingerprint still fails the transport.

Guard: aiortc 1.16.0 exactly and the attributes replaced; otherwise nothing
is patched and it says so once (see peer.dependency_patch). Installed on
import of :mod:`peer.negotiation`, whatever ``RTC_PEER_FAST_PATH`` says: it is
needed to talk to a native peer, not for speed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import aiortc
from aiortc.rtcdtlstransport import RTCDtlsTransport, State

from .dependency_patch import applicable

MADE_FOR = "1.16.0"
HASHES = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}
"""aiortc's ``X509_DIGEST_ALGORITHMS``, as hashlib names."""
_installed = False


def fingerprint(der: bytes, algorithm: str) -> str | None:
    """``"AB:CD:..."`` of ``der`` for an SDP algorithm name; None if not supported."""
    name = HASHES.get(algorithm.lower())
    if name is None:
        return None
    digest = hashlib.new(name, der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprints_match(der: bytes, fingerprints: list[tuple[str, str]]) -> bool:
    """aiortc's rule: at least one supported algorithm, and every supported one matches."""
    supported = [(fingerprint(der, algorithm), value) for algorithm, value in fingerprints]
    supported = [(mine, value) for mine, value in supported if mine is not None]
    return bool(supported) and all(mine == value.upper() for mine, value in supported)


def install() -> bool:
    """Patch ``RTCDtlsTransport._validate_peer_identity`` once; False if not applicable."""
    global _installed
    if _installed:
        return True
    try:
        from OpenSSL import crypto
    except ImportError:  # pragma: no cover - aiortc depends on pyOpenSSL
        return False
    if not applicable("dtls_any_certificate", aiortc.__version__, MADE_FOR,
                      [(RTCDtlsTransport, "_validate_peer_identity"),
                       (crypto, "dump_certificate")]):
        return False

    def _validate_peer_identity(self: Any, remoteParameters: Any) -> None:
        certificate = self._ssl.get_peer_certificate()
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate) if certificate else b""
        pairs = [(f.algorithm, f.value) for f in remoteParameters.fingerprints]
        if not der or not fingerprints_match(der, pairs):
            self._set_state(State.FAILED)  # as aiortc: start() sees it and returns

    RTCDtlsTransport._validate_peer_identity = _validate_peer_identity  # type: ignore[method-assign]
    _installed = True
    return True
