"""What one sender may cost a receiving Peer (contract v1.1 "Received files", issue 13).

The unit tests drive :class:`peer.transfers.FileTransfers` with a stand-in
link that keeps what the receiver answers; the last one sends 1,500 offers
through the real server to a real Peer and counts its open files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peer import Peer, PeerGone
from peer.files import safe_filename
from peer.framing import FileBody, FileCancel, FileChunk, FileEnd, FileOffer, FileResult
from peer.peer_link import PeerInfo
from peer.transfers import MAX_INCOMING_PER_SENDER, FileTransfers
from tests.helpers.server import running_server

WAIT = 30.0


class StubLink:
    """The two members of a PeerLink that receiving uses, answers kept."""

    def __init__(self, peer_id: str) -> None:
        self.info = PeerInfo(peer_id, {}, False)
        self.sent: list[FileBody] = []

    def send_control(self, body: FileBody) -> None:
        self.sent.append(body)

    def cancels(self) -> dict[str, str]:
        return {b.id: b.reason for b in self.sent if isinstance(b, FileCancel)}


_made: list[FileTransfers] = []


@pytest.fixture(autouse=True)
def _close_transfers() -> Iterator[None]:
    """Every partial file a test leaves open is closed (and deleted) after it."""
    yield
    while _made:
        transfers = _made.pop()
        for sender in {owner for owner, _ in transfers._incoming}:
            transfers.drop_peer(sender, PeerGone("test over"))


def _transfers(tmp_path: Path, **options: Any) -> tuple[FileTransfers, list[tuple[str, str, Any]]]:
    raised: list[tuple[str, str, Any]] = []
    transfers = FileTransfers(tmp_path, lambda e, p, d: raised.append((e, p, d)), **options)
    _made.append(transfers)
    return transfers, raised


def _offer(file_id: str, name: str = "a.bin", size: int = 3) -> FileOffer:
    return FileOffer(file_id, name, size, 16 * 1024)


def _finish(transfers: FileTransfers, link: StubLink, file_id: str, data: bytes) -> None:
    transfers.receive(link, FileChunk(file_id, 0, data))  # type: ignore[arg-type]
    transfers.receive(link, FileEnd(file_id, hashlib.sha256(data).hexdigest()))  # type: ignore[arg-type]


def test_at_most_four_files_at_once_per_sender(tmp_path: Path) -> None:
    transfers, _ = _transfers(tmp_path)
    mallory, alice = StubLink("mallory"), StubLink("alice")
    for n in range(MAX_INCOMING_PER_SENDER + 2):
        transfers.receive(mallory, _offer(f"m{n}"))  # type: ignore[arg-type]
    refused = mallory.cancels()
    assert sorted(refused) == ["m4", "m5"]
    assert all("too many files at once" in reason for reason in refused.values())
    assert len(list(tmp_path.glob(".*.part"))) == MAX_INCOMING_PER_SENDER
    transfers.receive(alice, _offer("a0"))  # type: ignore[arg-type]
    assert alice.cancels() == {}  # another sender has its own four
    _finish(transfers, mallory, "m0", b"abc")  # one finished: room for one more
    transfers.receive(mallory, _offer("m6"))  # type: ignore[arg-type]
    assert "m6" not in mallory.cancels()


def test_max_file_bytes(tmp_path: Path) -> None:
    transfers, raised = _transfers(tmp_path, max_file_bytes=3)
    link = StubLink("s")
    transfers.receive(link, _offer("big", size=4))  # type: ignore[arg-type]
    transfers.receive(link, _offer("fits", size=3))  # type: ignore[arg-type]
    assert list(link.cancels()) == ["big"] and "over this peer's limit of 3" in link.cancels()["big"]
    _finish(transfers, link, "fits", b"xyz")
    assert (tmp_path / "a.bin").read_bytes() == b"xyz"
    assert [e for e, _, _ in raised if e == "file-offer"] == ["file-offer"]


def test_accept_file_decides_before_any_byte(tmp_path: Path) -> None:
    asked: list[tuple[str, str, int]] = []

    def accept(sender: str, name: str, size: int) -> bool:
        asked.append((sender, name, size))
        return name.endswith(".txt")

    transfers, _ = _transfers(tmp_path, accept_file=accept)
    link = StubLink("s")
    transfers.receive(link, _offer("no", "run.exe", 5))  # type: ignore[arg-type]
    transfers.receive(link, _offer("yes", "notes.txt", 3))  # type: ignore[arg-type]
    assert asked == [("s", "run.exe", 5), ("s", "notes.txt", 3)]
    assert list(link.cancels()) == ["no"]
    assert not list(tmp_path.glob("*run.exe*"))  # nothing written for the refused one


def test_accept_file_that_raises_refuses(tmp_path: Path) -> None:
    def accept(sender: str, name: str, size: int) -> bool:
        raise RuntimeError("bug in the application")

    transfers, _ = _transfers(tmp_path, accept_file=accept)
    link = StubLink("s")
    transfers.receive(link, _offer("x"))  # type: ignore[arg-type]
    assert list(link.cancels()) == ["x"]


def test_refused_when_the_disk_lacks_space(tmp_path: Path) -> None:
    transfers, _ = _transfers(tmp_path)
    link = StubLink("s")
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    transfers.receive(link, _offer("huge", size=free + 1024**3))  # type: ignore[arg-type]
    assert "not enough space" in link.cancels()["huge"]
    assert not list(tmp_path.iterdir())


def test_transfers_under_way_reserve_their_space(tmp_path: Path) -> None:
    transfers, _ = _transfers(tmp_path)
    link = StubLink("s")
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    transfers.receive(link, _offer("first", size=free * 2 // 3))  # type: ignore[arg-type]
    transfers.receive(link, _offer("second", size=free * 2 // 3))  # type: ignore[arg-type]
    assert list(link.cancels()) == ["second"]


def test_a_planted_link_is_never_followed(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (downloads / ".a.bin.f1.part").symlink_to(victim)
    transfers, _ = _transfers(downloads)
    link = StubLink("s")
    transfers.receive(link, _offer("f1"))  # type: ignore[arg-type]
    assert "cannot save" in link.cancels()["f1"]
    assert victim.read_text() == "precious"


def test_a_link_at_the_final_name_is_kept_and_skipped(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "a.bin").symlink_to(victim)
    transfers, _ = _transfers(downloads)
    link = StubLink("s")
    transfers.receive(link, _offer("f1"))  # type: ignore[arg-type]
    _finish(transfers, link, "f1", b"new")
    assert victim.read_text() == "precious"
    assert (downloads / "a (1).bin").read_bytes() == b"new"
    assert any(isinstance(b, FileResult) and b.ok for b in link.sent)


def test_a_duplicate_offer_id_does_not_leak_the_first(tmp_path: Path) -> None:
    transfers, _ = _transfers(tmp_path)
    link = StubLink("s")
    transfers.receive(link, _offer("same"))  # type: ignore[arg-type]
    transfers.receive(link, _offer("same"))  # type: ignore[arg-type]
    assert "already arriving" in link.cancels()["same"]
    _finish(transfers, link, "same", b"abc")
    assert (tmp_path / "a.bin").read_bytes() == b"abc"


def test_the_download_dir_is_created(tmp_path: Path) -> None:
    target = tmp_path / "not" / "yet"
    transfers, _ = _transfers(target)
    link = StubLink("s")
    transfers.receive(link, _offer("f"))  # type: ignore[arg-type]
    _finish(transfers, link, "f", b"abc")
    assert (target / "a.bin").read_bytes() == b"abc"


@pytest.mark.parametrize("name, expected", [
    ("invoice\u202egpj.exe", "invoice_gpj.exe"),      # right-to-left override
    ("a\u2066b\u2069.txt", "a_b_.txt"),                # bidi isolates
    ("zero\u200bwidth.txt", "zero_width.txt"),
    ("bom\ufeff.txt", "bom_.txt"),
    ("line\u2028sep", "line_sep"),
    ("caf\u00e9 \u6587\u4ef6.pdf", "caf\u00e9 \u6587\u4ef6.pdf"),  # letters stay
])
def test_safe_filename_drops_disguising_characters(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_1500_offers_do_not_exhaust_file_descriptors(tmp_path: Path) -> None:
    """Issue 13: 1,500 offers opened 1,500 .part files (fd limit 1024)."""
    downloads = tmp_path / "downloads"
    async with running_server("--rate-limit", "0") as server:
        receiver = Peer(server.url, "flood", webrtc=False, download_dir=downloads)
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        receiver.on("done", lambda _s, _d: marker.done() or marker.set_result(None))
        sender = Peer(server.url, "flood", webrtc=False)
        async with receiver, sender:
            before = _open_fds()
            link = sender._links[receiver.id]
            for n in range(1500):
                await link.send_body(_offer(f"flood{n}", f"f{n}.bin", 10))
            await sender.emit("done", None, to=receiver.id)
            await asyncio.wait_for(marker, WAIT)  # in order: every offer was handled before
            assert len(list(downloads.glob(".*.part"))) == MAX_INCOMING_PER_SENDER
            assert _open_fds() - before <= MAX_INCOMING_PER_SENDER + 8
