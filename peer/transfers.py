"""``FileTransfers``: the file transfers of one Peer (mirrors ``web/static/lib/transfers.js``).

Sending reads a file block by block in a thread and feeds it, chunk by chunk,
into the peer's session (waiting while the send buffer is full), then waits
for the receiver's verdict. Receiving writes each incoming file to a hidden
``.<name>.<id>.part`` file in the download directory and, once the SHA-256
matches, moves it to its name, or to ``name (1).ext``, ``name (2).ext``, ...
when that is taken: a received file never replaces one already there.

What a sender may cost the receiver is bounded before a byte is written: at
most :data:`MAX_INCOMING_PER_SENDER` files from one sender at once (one open
file each), none over ``max_file_bytes``, none that does not fit in the free
space of the download directory (less what the transfers under way still
need), and ``accept_file(sender, name, size)`` may refuse any; a refused offer
is answered with a ``FileCancel`` that says why. Files are created with
``O_CREAT | O_EXCL | O_NOFOLLOW``: never over an existing file, never through
a symbolic link planted in the download directory. The
pure parts (chunks, hashing, the verdict, the names) are in :mod:`peer.files`;
this is their owner.

Events raised through the peer, with the browser client's names and fields:
``file`` (senderId, :class:`ReceivedFile`), ``file-offer`` (senderId,
:class:`FileOffered`), ``file-progress`` (peerId, :class:`FileProgress`) and
``file-failed`` (peerId, :class:`FileFailed`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FileTransferError, HashMismatch
from .files import (
    FileReceiver,
    FileSender,
    Progress,
    new_file_id,
    numbered_names,
    safe_filename,
)
from .framing import (
    PEER_CHUNK_BYTES,
    FileBody,
    FileCancel,
    FileChunk,
    FileEnd,
    FileOffer,
    FileResult,
)
from .peer_link import PeerLink

logger = logging.getLogger(__name__)

READ_AHEAD_BYTES = 1024 * 1024
"""Bytes read from the file at once (then cut into chunks), about."""
READ_BYTES = PEER_CHUNK_BYTES * max(1, READ_AHEAD_BYTES // PEER_CHUNK_BYTES)
"""What is read at once: whole chunks, so no chunk straddles two reads."""

MAX_NAME_TRIES = 10_000
"""Numbered names tried before a received file is refused."""

MAX_INCOMING_PER_SENDER = 4
"""Files one sender may have in flight towards this peer at once (contract v1.1)."""

RaiseEvent = Callable[[str, str, Any], None]
"""``raise_event(event, peer_id, data)``: hand an event to the peer's handlers."""

AcceptFile = Callable[[str, str, int], bool]
"""``accept_file(sender_id, name, size) -> bool``: False refuses an offer."""

_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
"""A new file only: fails on any existing name, a symbolic link included."""


def create_new(path: Path, mode: int = 0o644) -> BinaryIO:
    """Open ``path`` for writing as a file that did not exist (never through a link)."""
    fd = os.open(path, _CREATE_FLAGS, mode)
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class ReceivedFile:
    """A whole file whose SHA-256 matched, saved at ``path``."""

    name: str
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class FileOffered:
    """Raised as event ``file-offer`` when a file starts to arrive."""

    id: str
    name: str
    size: int


@dataclass(frozen=True)
class FileProgress:
    """Raised as event ``file-progress``; ``direction`` is "send" or "receive"."""

    id: str
    name: str
    size: int
    done: int
    direction: str


@dataclass(frozen=True)
class FileFailed:
    """Raised as event ``file-failed``; ``error`` says why (HashMismatch, ...)."""

    id: str
    name: str
    direction: str
    error: FileTransferError


@dataclass
class _Incoming:
    receiver: FileReceiver
    handle: BinaryIO
    part_path: Path

    def discard(self) -> None:
        """Close and delete the partial file."""
        try:
            self.handle.close()
            self.part_path.unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("could not remove %s: %s", self.part_path, exc)


def save_as_new_file(part: Path, name: str) -> Path:
    """Move ``part`` to ``name`` in its directory, or the first free ``name (n).ext``.

    Never replaces a file: each candidate is claimed atomically, as a hard link
    (which fails if the name exists) or, where the file system has no hard
    links, as a new empty file created with ``O_EXCL`` that the move then fills.
    """
    for candidate in islice(numbered_names(name), MAX_NAME_TRIES):
        target = part.with_name(candidate)
        try:
            os.link(part, target)
        except FileExistsError:
            continue
        except OSError:  # no hard links here: reserve the name, then move onto it
            try:
                create_new(target).close()
            except FileExistsError:
                continue
            try:
                os.replace(part, target)
            except OSError:
                target.unlink(missing_ok=True)
                raise
            return target
        part.unlink()
        return target
    raise FileExistsError(f"{name} and {MAX_NAME_TRIES - 1} numbered names are taken")


def _existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the file system it will be on)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _progress_events(
    raise_event: RaiseEvent, peer_id: str, file_id: str, name: str, direction: str
) -> Progress:
    """An ``on_progress`` that raises ``file-progress`` every 1% (or 256 KiB) and at the end."""
    last = 0

    def progress(done: int, total: int) -> None:
        nonlocal last
        if done == total or done - last >= max(total // 100, 256 * 1024):
            last = done
            raise_event("file-progress", peer_id, FileProgress(file_id, name, total, done, direction))

    return progress


class FileTransfers:
    """Every file transfer of one peer, in both directions."""

    def __init__(
        self,
        download_dir: Path,
        raise_event: RaiseEvent,
        *,
        max_file_bytes: int | None = None,
        accept_file: AcceptFile | None = None,
    ) -> None:
        if max_file_bytes is not None and max_file_bytes < 0:
            raise ValueError(f"max_file_bytes must be 0 or more, not {max_file_bytes}")
        self.download_dir = download_dir
        self.max_file_bytes = max_file_bytes
        self.accept_file = accept_file
        self._raise = raise_event
        self._outgoing: dict[tuple[str, str], asyncio.Future[FileResult]] = {}
        """(peer id, file id) -> the receiver's verdict."""
        self._incoming: dict[tuple[str, str], _Incoming] = {}
        """(peer id, file id) -> the file being received."""

    # -- sending --------------------------------------------------------------------

    async def send(
        self, link: PeerLink, path: str | os.PathLike[str], on_progress: Progress | None = None
    ) -> str:
        """Send a file; returns its SHA-256 once the receiver confirmed it."""
        peer_id = link.info.peer_id
        source = Path(path)
        size = source.stat().st_size
        file_id = new_file_id()
        events = _progress_events(self._raise, peer_id, file_id, source.name, "send")

        def progress(done: int, total: int) -> None:
            if on_progress is not None:
                on_progress(done, total)
            events(done, total)

        sender = FileSender(file_id, source.name, size, chunk_size=PEER_CHUNK_BYTES,
                            on_progress=progress)
        result: asyncio.Future[FileResult] = asyncio.get_running_loop().create_future()
        key = (peer_id, file_id)
        self._outgoing[key] = result
        try:
            await link.send_body(sender.offer)
            with source.open("rb") as handle:  # noqa: ASYNC230 (reads go through a thread)
                block, offset = b"", 0
                while count := sender.next_read:
                    if offset >= len(block):
                        block, offset = await asyncio.to_thread(handle.read, READ_BYTES), 0
                    piece = block[offset : offset + count]
                    offset += len(piece)
                    await link.send_body(sender.chunk(piece))
            await link.send_body(sender.end())
            verdict = await result
            sender.result(verdict)
        except BaseException as exc:
            if not link.gone and not result.done():
                link.send_control(FileCancel(file_id, "sender stopped"))
            error = exc if isinstance(exc, FileTransferError) else FileTransferError(
                str(exc) or type(exc).__name__)
            self._raise("file-failed", peer_id, FileFailed(file_id, source.name, "send", error))
            raise
        finally:
            self._outgoing.pop(key, None)
        return verdict.sha256

    # -- receiving ------------------------------------------------------------------

    def receive(self, link: PeerLink, body: FileBody) -> None:
        """One file-transfer body from ``link``'s peer, in session order."""
        key = (link.info.peer_id, body.id)
        if isinstance(body, FileOffer):
            self._on_offer(link, body)
        elif isinstance(body, FileChunk):
            incoming = self._incoming.get(key)
            if incoming is None:
                return  # a transfer we refused or already failed
            try:
                incoming.receiver.chunk(body)
            except (FileTransferError, OSError) as exc:
                self._fail_incoming(link, body.id, str(exc))
        elif isinstance(body, FileEnd):
            self._on_end(link, body)
        elif isinstance(body, FileResult):
            future = self._outgoing.get(key)
            if future is not None and not future.done():
                future.set_result(body)
        else:
            self._on_cancel(link, body)

    def _on_offer(self, link: PeerLink, offer: FileOffer) -> None:
        sender = link.info.peer_id
        refusal = self._refusal(sender, offer)
        part = self.download_dir / f".{safe_filename(offer.name)}.{offer.id}.part"
        if refusal is None:
            try:
                self.download_dir.mkdir(parents=True, exist_ok=True)
                handle = create_new(part)
            except OSError as exc:
                refusal = f"cannot save: {exc.strerror or exc}"
        if refusal is not None:
            # DEBUG: a flood of offers must not flood the log too.
            logger.debug("refused file %r (%d bytes) from %s: %s", offer.name, offer.size, sender,
                         refusal)
            link.send_control(FileCancel(offer.id, refusal[:200]))
            return
        progress = _progress_events(self._raise, sender, offer.id, offer.name, "receive")
        receiver = FileReceiver(offer, handle.write, on_progress=progress)
        self._incoming[(sender, offer.id)] = _Incoming(receiver, handle, part)
        self._raise("file-offer", sender, FileOffered(offer.id, offer.name, offer.size))
        if offer.size == 0:
            progress(0, 0)

    def _refusal(self, sender: str, offer: FileOffer) -> str | None:
        """Why an offer is refused, or None to take it; nothing is written yet."""
        if (sender, offer.id) in self._incoming:
            return "a file with this id is already arriving"
        if sum(1 for owner, _ in self._incoming if owner == sender) >= MAX_INCOMING_PER_SENDER:
            return f"too many files at once: at most {MAX_INCOMING_PER_SENDER} per sender"
        if self.max_file_bytes is not None and offer.size > self.max_file_bytes:
            return f"file of {offer.size} bytes is over this peer's limit of {self.max_file_bytes}"
        if self.accept_file is not None:
            try:
                accepted = self.accept_file(sender, offer.name, offer.size)
            except Exception:
                logger.exception("accept_file failed; refusing %r", offer.name)
                accepted = False
            if not accepted:
                return "the receiver declined the file"
        try:
            free = shutil.disk_usage(_existing_parent(self.download_dir)).free
        except OSError as exc:
            return f"cannot save: {exc.strerror or exc}"
        pending = sum(i.receiver.offer.size - i.receiver.received for i in self._incoming.values())
        if offer.size + pending > free:
            return f"not enough space: {offer.size} bytes offered, {max(free - pending, 0)} free"
        return None

    def _on_end(self, link: PeerLink, end: FileEnd) -> None:
        sender = link.info.peer_id
        incoming = self._incoming.pop((sender, end.id), None)
        if incoming is None:
            return
        offer = incoming.receiver.offer
        try:
            result = incoming.receiver.end(end)
            incoming.handle.close()
        except (FileTransferError, OSError) as exc:
            self._fail_incoming(link, end.id, str(exc), incoming)
            return
        if not result.ok:
            incoming.discard()
            logger.warning("file %s from %s: SHA-256 mismatch", offer.name, sender)
            link.send_control(result)
            self._raise("file-failed", sender, FileFailed(
                offer.id, offer.name, "receive", HashMismatch(
                    f"{offer.name}: SHA-256 {result.sha256} differs from the sender's {end.sha256}")))
            return
        try:
            target = save_as_new_file(incoming.part_path, safe_filename(offer.name))
        except OSError as exc:
            self._fail_incoming(link, end.id, f"cannot save: {exc.strerror or exc}", incoming)
            return
        link.send_control(result)
        self._raise("file", sender, ReceivedFile(offer.name, offer.size, result.sha256, target))

    def _on_cancel(self, link: PeerLink, cancel: FileCancel) -> None:
        sender = link.info.peer_id
        future = self._outgoing.get((sender, cancel.id))
        if future is not None and not future.done():
            future.set_exception(FileTransferError(f"receiver cancelled: {cancel.reason}"))
        incoming = self._incoming.pop((sender, cancel.id), None)
        if incoming is not None:
            incoming.discard()
            name = incoming.receiver.offer.name
            logger.warning("%s cancelled file %s: %s", sender, name, cancel.reason)
            self._raise("file-failed", sender, FileFailed(cancel.id, name, "receive",
                        FileTransferError(f"{name}: sender cancelled: {cancel.reason}")))

    def _fail_incoming(
        self, link: PeerLink, file_id: str, reason: str, incoming: _Incoming | None = None
    ) -> None:
        sender = link.info.peer_id
        incoming = incoming or self._incoming.pop((sender, file_id), None)
        if incoming is not None:
            incoming.discard()
            name = incoming.receiver.offer.name
            self._raise("file-failed", sender, FileFailed(
                file_id, name, "receive", FileTransferError(f"{name}: {reason}")))
        link.send_control(FileCancel(file_id, reason[:200]))

    # -- the end --------------------------------------------------------------------

    def drop_peer(self, peer_id: str, error: BaseException) -> None:
        """The peer left: its outgoing transfers fail with ``error``, incoming ones are deleted."""
        for (owner, _), future in self._outgoing.items():
            if owner == peer_id and not future.done():
                future.set_exception(error)
        for key in [key for key in self._incoming if key[0] == peer_id]:
            self._incoming.pop(key).discard()
