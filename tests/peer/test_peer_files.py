"""send_file on the data channel, on the relay and across switches: SHA-256 equal, memory bounded."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import resource
from pathlib import Path
from typing import Any

import pytest

from peer import FileProgress, Peer, ReceivedFile
from peer.transfers import save_as_new_file
from tests.helpers.server import RunningServer

WAIT = 10.0
BIG = 50 * 1000 * 1000
MEMORY_SLACK = 48 * 1024 * 1024
"""Peak RSS may grow by this much while both ends move a 50 MB file."""


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
            block = block[1:] + block[:1]
    return digest.hexdigest()


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Receiver:
    def __init__(self, peer: Peer) -> None:
        self.file: asyncio.Future[ReceivedFile] = asyncio.get_running_loop().create_future()
        self.progress: list[int] = []
        peer.on("file", self._on_file)
        peer.on("file-progress", lambda _s, p: self.progress.append(p.done))

    def _on_file(self, _sender: str, received: ReceivedFile) -> None:
        self.file.set_result(received)


async def _wait_upgraded(peer: Peer, other: str) -> None:
    upgraded = asyncio.Event()
    peer.on("upgrade", lambda sender, _d: upgraded.set() if sender == other else None)
    if peer.transport(other) != "webrtc":
        await asyncio.wait_for(upgraded.wait(), WAIT)


@pytest.mark.parametrize("webrtc", [True, False], ids=["webrtc", "relay"])
async def test_50_mb_file(server: RunningServer, tmp_path: Path, webrtc: bool) -> None:
    source = tmp_path / "big.bin"
    expected = _make_file(source, BIG)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    sender = Peer(server.url, "files", webrtc=webrtc)
    receiver_peer = Peer(server.url, "files", download_dir=downloads)
    receiver = Receiver(receiver_peer)
    async with sender, receiver_peer:
        if webrtc:
            await _wait_upgraded(sender, receiver_peer.id)
        baseline = _max_rss()
        sent: list[int] = []
        digest = await asyncio.wait_for(
            sender.send_file(receiver_peer.id, source, on_progress=lambda d, _t: sent.append(d)),
            90,
        )
        received = await asyncio.wait_for(receiver.file, WAIT)
        grown = _max_rss() - baseline
        assert sender.transport(receiver_peer.id) == ("webrtc" if webrtc else "relay")
    assert digest == expected == received.sha256
    assert received.name == "big.bin" and received.size == BIG
    assert received.path == downloads / "big.bin"
    assert hashlib.sha256(received.path.read_bytes()).hexdigest() == expected
    assert sent[-1] == BIG and receiver.progress[-1] == BIG
    assert sorted(receiver.progress) == receiver.progress
    assert grown < MEMORY_SLACK, f"peak RSS grew by {grown / 1e6:.0f} MB"
    assert [p.name for p in downloads.iterdir()] == ["big.bin"]  # no .part left


async def test_file_across_upgrade_and_forced_downgrade(server: RunningServer, tmp_path: Path) -> None:
    size = 8 * 1000 * 1000
    source = tmp_path / "switch.bin"
    expected = _make_file(source, size)
    sender = Peer(server.url, "switch")
    receiver_peer = Peer(server.url, "switch", download_dir=tmp_path / "in")
    (tmp_path / "in").mkdir()
    receiver = Receiver(receiver_peer)
    switches: list[str] = []
    sender.on("upgrade", lambda _s, _d: switches.append("up"))
    sender.on("downgrade", lambda _s, _d: switches.append("down"))
    async with sender, receiver_peer:
        other = receiver_peer.id
        first_half = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done >= total // 2 and not first_half.is_set():
                first_half.set()
                remote = sender._links[other]
                if remote.webrtc is not None:
                    remote.webrtc.channel.close()

        await _wait_upgraded(sender, other)
        digest = await asyncio.wait_for(sender.send_file(other, source, on_progress=progress), 60)
        received = await asyncio.wait_for(receiver.file, WAIT)
        await _wait_upgraded(sender, other)
    assert digest == expected == received.sha256
    assert switches[:2] == ["up", "down"]


async def test_zero_byte_file_and_unsafe_name(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    async with Peer(server.url, "empty", webrtc=False) as sender:
        receiver_peer = Peer(server.url, "empty", download_dir=tmp_path / "in")
        (tmp_path / "in").mkdir()
        receiver = Receiver(receiver_peer)
        async with receiver_peer:
            digest = await sender.send_file(receiver_peer.id, source)
            received = await asyncio.wait_for(receiver.file, WAIT)
    assert digest == hashlib.sha256(b"").hexdigest() == received.sha256
    assert received.path.read_bytes() == b""


async def test_received_files_never_replace_existing_ones(
    server: RunningServer, tmp_path: Path
) -> None:
    downloads = tmp_path / "in"
    downloads.mkdir()
    (downloads / "report.txt").write_bytes(b"mine")
    received: list[ReceivedFile] = []
    three = asyncio.Event()

    def on_file(_sender: str, file: ReceivedFile) -> None:
        received.append(file)
        if len(received) == 3:
            three.set()

    async with Peer(server.url, "names", webrtc=False) as sender:
        receiver_peer = Peer(server.url, "names", webrtc=False, download_dir=downloads)
        receiver_peer.on("file", on_file)
        async with receiver_peer:
            for number in range(3):
                source = tmp_path / f"out{number}" / "report.txt"
                source.parent.mkdir()
                source.write_bytes(f"theirs {number}".encode())
                await sender.send_file(receiver_peer.id, source)
            await asyncio.wait_for(three.wait(), WAIT)
    assert (downloads / "report.txt").read_bytes() == b"mine"
    assert [(f.name, f.path.name, f.path.read_bytes()) for f in received] == [
        ("report.txt", "report (1).txt", b"theirs 0"),
        ("report.txt", "report (2).txt", b"theirs 1"),
        ("report.txt", "report (3).txt", b"theirs 2"),
    ]
    assert sorted(p.name for p in downloads.iterdir()) == [
        "report (1).txt", "report (2).txt", "report (3).txt", "report.txt"]  # no .part left


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no-link"])
def test_save_as_new_file_claims_a_free_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool
) -> None:
    if not hard_links:  # as on file systems without hard links (FAT, some mounts)
        def no_link(_src: object, _dst: object) -> None:
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    (tmp_path / "a.tar.gz").write_bytes(b"old")
    (tmp_path / "a.tar (1).gz").mkdir()  # a directory takes a name too
    part = tmp_path / ".a.tar.gz.0123.part"
    part.write_bytes(b"new")
    target = save_as_new_file(part, "a.tar.gz")
    assert target == tmp_path / "a.tar (2).gz" and target.read_bytes() == b"new"
    assert (tmp_path / "a.tar.gz").read_bytes() == b"old" and not part.exists()


def test_file_progress_is_a_plain_record() -> None:
    progress: Any = FileProgress("id", "n", 10, 5, "send")
    assert (progress.done, progress.size, progress.direction) == (5, 10, "send")
