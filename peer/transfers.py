"""``FileTransfers``: the file transfers of one Peer (mirrors ``web/static/lib/transfers.js``).

Sending reads a file block by block in a thread and feeds it, chunk by chunk,
into the peer's session (waiting while the send buffer is full), then waits
for the receiver's verdict. Receiving writes each incoming file to a hidden
``.<name>.<id>.part`` file in the download directory and, once the SHA-256
matches, moves it to its name, or to ``name (1).ext``, ``name (2).ext``, ...
when that is taken: a received file never replaces one already there. The
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
from .framing import FileBody, FileCancel, FileChunk, FileEnd, FileOffer, FileResult
from .peer_link import PeerLink

logger = logging.getLogger(__name__)

READ_AHEAD_BYTES = 1024 * 1024
"""Bytes read from the file at once (then cut into chunks)."""

MAX_NAME_TRIES = 10_000
"""Numbered names tried before a received file is refused."""

RaiseEvent = Callable[[str, str, Any], None]
"""``raise_event(event, peer_id, data)``: hand an event to the peer's handlers."""


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
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
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

    def __init__(self, download_dir: Path, raise_event: RaiseEvent) -> None:
        self.download_dir = download_dir
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

        sender = FileSender(file_id, source.name, size, on_progress=progress)
        result: asyncio.Future[FileResult] = asyncio.get_running_loop().create_future()
        key = (peer_id, file_id)
        self._outgoing[key] = result
        try:
            await link.send_body(sender.offer)
            with source.open("rb") as handle:  # noqa: ASYNC230 (reads go through a thread)
                block, offset = b"", 0
                while count := sender.next_read:
                    if offset >= len(block):
                        block, offset = await asyncio.to_thread(handle.read, READ_AHEAD_BYTES), 0
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
        part = self.download_dir / f".{safe_filename(offer.name)}.{offer.id}.part"
        try:
            handle = part.open("wb")
        except OSError as exc:
            link.send_control(FileCancel(offer.id, f"cannot save: {exc.strerror}"))
            return
        sender = link.info.peer_id
        progress = _progress_events(self._raise, sender, offer.id, offer.name, "receive")
        receiver = FileReceiver(offer, handle.write, on_progress=progress)
        self._incoming[(sender, offer.id)] = _Incoming(receiver, handle, part)
        self._raise("file-offer", sender, FileOffered(offer.id, offer.name, offer.size))
        if offer.size == 0:
            progress(0, 0)

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
