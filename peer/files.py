"""File transfer: chunking, reassembly and SHA-256 verification.

Sans-I/O and bounded: the sender asks for one chunk's bytes at a time
(:attr:`FileSender.next_read`), the receiver hands each chunk's bytes to a
sink as it arrives, and both hash as they go, so memory stays at one chunk
whatever the file size. The bodies they produce go through a
:class:`~peer.session.Session`, whose send buffer is the backpressure (its
acks are the credit on the relay path).

One transfer, in stream order::

    sender                                 receiver
    FileOffer {id, name, size, chunkSize}  -> FileReceiver(offer, sink)
    FileChunk {id, index, payload} ...     -> receiver.chunk(...)
    FileEnd {id, sha256}                   -> receiver.end(...) returns
    sender.result(...)                     <- FileResult {id, ok, sha256}

Either side may send ``FileCancel {id, reason}`` instead at any point.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator

from .errors import FileTransferError, HashMismatch
from .framing import DEFAULT_CHUNK_BYTES, MAX_NAME_CHARS, FileChunk, FileEnd, FileOffer, FileResult

Progress = Callable[[int, int], object]
"""``on_progress(done_bytes, total_bytes)``."""

_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f/\\:*?\"<>|"
    # bidi controls (U+202E "right-to-left override" makes "gpj.exe" look like "exe.jpg"),
    # zero-width and other invisible format characters, line/paragraph separators
    r"\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def new_file_id() -> str:
    """A random transfer id, unique enough within one session."""
    return secrets.token_hex(8)


def safe_filename(name: str) -> str:
    """A name that is safe to create in a download directory.

    Drops any directory part (``/`` or ``\\``), replaces with ``_`` the
    characters Windows or terminals choke on and the invisible ones that
    disguise a name (bidi overrides such as U+202E, zero-width characters),
    and never returns ``""``, ``.`` or ``..``.
    """
    base = re.split(r"[/\\]", name)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")[:MAX_NAME_CHARS]
    return cleaned or "file"


def numbered_names(name: str) -> Iterator[str]:
    """``name``, then ``stem (1).ext``, ``stem (2).ext``, ...: the names to try in turn.

    The number goes before the last extension (``report (1).pdf``); a name
    with no extension, or only a leading dot (``.bashrc``), gets it at the end.
    """
    yield name
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    number = 1
    while True:
        yield f"{stem} ({number}){dot}{ext}"
        number += 1


class FileSender:
    """Produces the bodies of one outgoing file, reading nothing itself."""

    def __init__(
        self,
        file_id: str,
        name: str,
        size: int,
        *,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
        on_progress: Progress | None = None,
    ) -> None:
        self.offer = FileOffer(file_id, name, size, chunk_size)
        self.sent = 0
        self._index = 0
        self._hash = hashlib.sha256()
        self._on_progress = on_progress
        self._digest: str | None = None

    @property
    def next_read(self) -> int:
        """How many bytes to read for the next chunk; 0 when all are sent."""
        return min(self.offer.chunk_size, self.offer.size - self.sent)

    def chunk(self, data: bytes) -> FileChunk:
        """Wrap the next ``next_read`` bytes of the file."""
        if not data or len(data) != self.next_read:
            raise FileTransferError(f"read {len(data)} bytes, expected {self.next_read}")
        body = FileChunk(self.offer.id, self._index, bytes(data))
        self._index += 1
        self.sent += len(data)
        self._hash.update(data)
        if self._on_progress is not None:
            self._on_progress(self.sent, self.offer.size)
        return body

    def end(self) -> FileEnd:
        """The closing body, with the SHA-256 of everything sent."""
        if self.next_read:
            raise FileTransferError(f"{self.offer.size - self.sent} bytes not sent yet")
        self._digest = self._hash.hexdigest()
        return FileEnd(self.offer.id, self._digest)

    def result(self, result: FileResult) -> None:
        """Check the receiver's verdict; raises HashMismatch when it differs."""
        if self._digest is None:
            raise FileTransferError("result before end")
        if not result.ok or result.sha256 != self._digest:
            raise HashMismatch(f"receiver got sha256 {result.sha256}, sent {self._digest}")


class FileReceiver:
    """Checks, hashes and sinks the chunks of one incoming file, in order."""

    def __init__(
        self,
        offer: FileOffer,
        sink: Callable[[bytes], object],
        *,
        max_size: int | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        if max_size is not None and offer.size > max_size:
            raise FileTransferError(f"file of {offer.size} bytes over {max_size}")
        self.offer = offer
        self.received = 0
        self._index = 0
        self._hash = hashlib.sha256()
        self._sink = sink
        self._on_progress = on_progress

    def chunk(self, chunk: FileChunk) -> None:
        """Accept the next chunk: right index, right length, then sink it."""
        expected = min(self.offer.chunk_size, self.offer.size - self.received)
        if chunk.index != self._index or len(chunk.payload) != expected or not expected:
            raise FileTransferError(
                f"chunk {chunk.index} of {len(chunk.payload)} bytes, "
                f"expected chunk {self._index} of {expected}"
            )
        self._index += 1
        self.received += expected
        self._hash.update(chunk.payload)
        self._sink(chunk.payload)
        if self._on_progress is not None:
            self._on_progress(self.received, self.offer.size)

    def end(self, end: FileEnd) -> FileResult:
        """The verdict to send back; ``ok`` only when every byte and the hash match."""
        if self.received != self.offer.size:
            raise FileTransferError(f"end after {self.received} of {self.offer.size} bytes")
        digest = self._hash.hexdigest()
        return FileResult(self.offer.id, digest == end.sha256, digest)
