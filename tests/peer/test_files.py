"""File chunking, reassembly and verification, alone and through sessions."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from peer.errors import FileTransferError, HashMismatch, SendBufferFull
from peer.files import FileReceiver, FileSender, new_file_id, numbered_names, safe_filename
from peer.framing import FileBody, FileChunk, FileEnd, FileOffer, FileResult
from peer.session import Delivery, Session

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "peer-wire.json").read_text("utf-8")
)


def send_all(sender: FileSender, source: io.BytesIO) -> list[FileChunk]:
    chunks = []
    while sender.next_read:
        chunks.append(sender.chunk(source.read(sender.next_read)))
    return chunks


def test_sha256_vectors() -> None:
    for vector in VECTORS["sha256"]:
        assert hashlib.sha256(bytes.fromhex(vector["input"])).hexdigest() == vector["sha256"]


@pytest.mark.parametrize("size", [0, 1, 1000, 1024, 5000])
def test_round_trip_with_progress(size: int) -> None:
    content = bytes(i % 251 for i in range(size))
    progress: list[tuple[int, int]] = []
    sender = FileSender("f1", "a.bin", size, chunk_size=1024)
    sink = io.BytesIO()
    receiver = FileReceiver(
        sender.offer, sink.write, on_progress=lambda d, t: progress.append((d, t))
    )
    for chunk in send_all(sender, io.BytesIO(content)):
        assert len(chunk.payload) <= 1024
        receiver.chunk(chunk)
    result = receiver.end(sender.end())
    assert result == FileResult("f1", True, hashlib.sha256(content).hexdigest())
    sender.result(result)
    assert sink.getvalue() == content
    assert progress == [(min(i * 1024, size), size) for i in range(1, -(-size // 1024) + 1)]


def test_corrupted_chunk_is_detected_at_the_end() -> None:
    content = b"abcdefgh" * 300
    sender = FileSender("f", "x", len(content), chunk_size=1000)
    receiver = FileReceiver(sender.offer, io.BytesIO().write)
    for chunk in send_all(sender, io.BytesIO(content)):
        if chunk.index == 1:
            chunk = FileChunk(chunk.id, 1, b"X" + chunk.payload[1:])
        receiver.chunk(chunk)
    result = receiver.end(sender.end())
    assert not result.ok
    with pytest.raises(HashMismatch):
        sender.result(result)


@pytest.mark.parametrize(
    "chunk",
    [
        FileChunk("f", 1, b"x" * 10),  # skipped index
        FileChunk("f", 0, b"x" * 9),  # short
        FileChunk("f", 0, b"x" * 11),  # long
    ],
)
def test_out_of_place_chunk_is_refused(chunk: FileChunk) -> None:
    receiver = FileReceiver(FileOffer("f", "x", 25, 10), io.BytesIO().write)
    with pytest.raises(FileTransferError):
        receiver.chunk(chunk)


def test_chunk_past_the_end_and_early_end_are_refused() -> None:
    receiver = FileReceiver(FileOffer("f", "x", 3, 10), io.BytesIO().write)
    with pytest.raises(FileTransferError):
        receiver.end(FileEnd("f", "0" * 64))
    receiver.chunk(FileChunk("f", 0, b"abc"))
    with pytest.raises(FileTransferError):
        receiver.chunk(FileChunk("f", 1, b""))


def test_sender_checks_reads_and_order() -> None:
    sender = FileSender("f", "x", 5, chunk_size=4)
    with pytest.raises(FileTransferError):
        sender.result(FileResult("f", True, "0" * 64))
    with pytest.raises(FileTransferError):
        sender.chunk(b"abc")  # file shrank under us
    with pytest.raises(FileTransferError):
        sender.end()


def test_receiver_size_limit() -> None:
    with pytest.raises(FileTransferError):
        FileReceiver(FileOffer("f", "x", 101, 10), io.BytesIO().write, max_size=100)


def test_transfer_through_sessions_keeps_memory_to_the_window() -> None:
    content = bytes(range(256)) * 400
    a, b = Session(max_message_bytes=4096, max_buffered_bytes=4096), Session(ack_every=1)
    sender = FileSender(new_file_id(), "data.bin", len(content), chunk_size=1024)
    source, sink = io.BytesIO(content), io.BytesIO()
    receivers: dict[str, FileReceiver] = {}
    outbox: list[FileBody] = [sender.offer]  # bodies the session has not taken yet
    ended, peak = False, 0
    verdicts: list[Delivery] = []
    while not verdicts:
        wire = []
        while outbox or sender.next_read or not ended:
            if not outbox:
                if sender.next_read:
                    outbox.append(sender.chunk(source.read(sender.next_read)))
                else:
                    outbox.append(sender.end())
                    ended = True
            try:
                wire.append(a.send(outbox[0], 0.0))
            except SendBufferFull:
                break
            outbox.pop(0)
        peak = max(peak, a.buffered_bytes)
        back = []
        for data in wire:
            for body in b.receive(data, 0.0):
                if isinstance(body, FileOffer):
                    receivers[body.id] = FileReceiver(body, sink.write)
                elif isinstance(body, FileChunk):
                    receivers[body.id].chunk(body)
                elif isinstance(body, FileEnd):
                    back.append(b.send(receivers[body.id].end(body), 0.0))
        for data in b.poll(0.0) + back:
            verdicts += a.receive(data, 0.0)
    (verdict,) = verdicts
    assert isinstance(verdict, FileResult) and verdict.ok
    sender.result(verdict)
    assert sink.getvalue() == content
    assert 3000 < peak <= 4096


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\a.txt", "a.txt"),
        ("..", "file"),
        ("", "file"),
        ("a\x00b:c?.txt", "a_b_c_.txt"),
        ("été 😀.txt", "été 😀.txt"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


@pytest.mark.parametrize(
    ("name", "second", "third"),
    [
        ("report.pdf", "report (1).pdf", "report (2).pdf"),
        ("archive.tar.gz", "archive.tar (1).gz", "archive.tar (2).gz"),
        ("README", "README (1)", "README (2)"),
        (".bashrc", ".bashrc (1)", ".bashrc (2)"),
    ],
)
def test_numbered_names(name: str, second: str, third: str) -> None:
    names = numbered_names(name)
    assert [next(names), next(names), next(names)] == [name, second, third]


def test_new_file_ids_are_valid_and_distinct() -> None:
    ids = {new_file_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 16 for i in ids)
