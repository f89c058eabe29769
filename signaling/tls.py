"""HTTPS for the server: ``--tls-cert``/``--tls-key``, or a throwaway ``--self-signed`` pair.

Browsers give a page the camera and microphone only in a secure context
(https, or http on localhost), so a call between two machines on a LAN needs
the server on https. ``--self-signed`` makes a certificate for this machine's
names and addresses that lives as long as the process (in a private temporary
directory, deleted at exit); its SHA-256 fingerprint is printed so a user can
compare it with what the browser's warning page shows before accepting it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SELF_SIGNED_DAYS = 30
INSTALL_HINT = "pip install 'rtc-signaling[tls]'"


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context; raises ``ssl.SSLError``/``OSError`` on a bad pair."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class SelfSigned:
    cert: str
    key: str
    names: tuple[str, ...]
    fingerprint: str
    """SHA-256 of the certificate, ``AB:CD:...`` as browsers show it."""


def local_names(host: str) -> tuple[str, ...]:
    """The names and addresses a LAN peer may use to reach this server."""
    names = ["localhost", "127.0.0.1", "::1"]
    with contextlib.suppress(OSError):
        names.append(socket.gethostname())
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing address
        names.append(probe.getsockname()[0])
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    return tuple(dict.fromkeys(names))


@contextlib.contextmanager
def self_signed(host: str) -> Iterator[SelfSigned]:
    """A fresh key and certificate in a private directory, removed when the block ends."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise SystemExit(f"--self-signed needs the cryptography package: {INSTALL_HINT}") from None
    names = local_names(host)
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signaling-server self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="signaling-tls-"))  # mode 0700
    try:
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        digest = cert.fingerprint(hashes.SHA256()).hex().upper()
        fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
        yield SelfSigned(str(cert_path), str(key_path), names, fingerprint)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
