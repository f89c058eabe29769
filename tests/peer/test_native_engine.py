"""The native data-channel engine (peer/native): real Peers on loopback, both engines.

Each Peer reads ``RTC_PEER_ENGINE`` when it is made, so one test can hold a
native and an aiortc Peer side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from peer import Peer, negotiation
from peer.constants import DATA_CHANNEL_HIGH_WATER_BYTES, DATA_CHANNEL_MESSAGE_BYTES
from peer.native import engine, library
from peer.native.connection import NativeError, NativePeerConnection, ice_server_urls
from peer.negotiation import dtls_client_offer
from tests.helpers.server import RunningServer

WAIT = 15.0

pytestmark = pytest.mark.skipif(library.load() is None, reason="libdatachannel not installed")


def make_peer(url: str, room: str, engine_mode: str, monkeypatch: pytest.MonkeyPatch,
              **options: Any) -> Peer:
    monkeypatch.setenv("RTC_PEER_ENGINE", engine_mode)
    return Peer(url, room, **options)


def connection(a: Peer, b: Peer) -> Any:
    negotiator = a._links[b.id].negotiator
    assert negotiator is not None
    return negotiator.peer_connection


async def upgraded(a: Peer, b: Peer) -> None:
    async with asyncio.timeout(WAIT):
        while a.transport(b.id) != "webrtc" or b.transport(a.id) != "webrtc":
            await asyncio.sleep(0.02)


class Inbox:
    def __init__(self, peer: Peer, count: int) -> None:
        self.got: list[Any] = []
        self.done = asyncio.Event()
        self.count = count
        peer.on("n", self._on)

    def _on(self, _sender: str, data: Any) -> None:
        self.got.append(data)
        if len(self.got) >= self.count:
            self.done.set()


@pytest.mark.parametrize(
    ("engine_a", "engine_b"),
    [("native", "native"), ("native", "aiortc"), ("aiortc", "native")],
    ids=["native-native", "native-aiortc", "aiortc-native"],
)
async def test_emits_and_a_file_between_engines(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    engine_a: str, engine_b: str,
) -> None:
    """Messages both ways once and in order, a checked file, a lossy datagram: whichever offers."""
    a = make_peer(server.url, "mixed", engine_a, monkeypatch)
    b = make_peer(server.url, "mixed", engine_b, monkeypatch, download_dir=tmp_path)
    at_a, at_b = Inbox(a, 200), Inbox(b, 200)
    files: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    b.on("file", lambda _s, received: files.set_result(received))
    datagrams: asyncio.Queue[Any] = asyncio.Queue()
    b.on("ping", lambda _s, data: datagrams.put_nowait(data))
    async with a, b:
        await upgraded(a, b)
        kinds = {type(connection(a, b)), type(connection(b, a))}
        expected = {NativePeerConnection} if engine_a == engine_b else {
            NativePeerConnection, RTCPeerConnection}
        assert kinds == expected
        for n in range(200):
            await a.emit("n", n, to=b.id)
            await b.emit("n", n, to=a.id)
        source = tmp_path / "f.bin"
        payload = os.urandom(3 * 1000 * 1000 + 7)
        source.write_bytes(payload)
        digest = await asyncio.wait_for(a.send_file(b.id, source), WAIT)
        received = await asyncio.wait_for(files, WAIT)
        await asyncio.wait_for(at_a.done.wait(), WAIT)
        await asyncio.wait_for(at_b.done.wait(), WAIT)
        assert at_a.got == at_b.got == list(range(200))
        assert digest == received.sha256 == hashlib.sha256(payload).hexdigest()
        # Unreliable: sent until one arrives (a datagram may be dropped, never damaged).
        async with asyncio.timeout(WAIT):
            while datagrams.empty():
                await a.emit("ping", "lossy", to=b.id, reliable=False)
                await asyncio.sleep(0.05)
        assert await datagrams.get() == "lossy"
        path = a.path(b.id)
        assert path["transport"] == "webrtc" and path["candidate"] == "host"


async def test_backpressure_bounds_what_the_native_channel_holds(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 20 MB file never puts more than the high water (plus one message) into libdatachannel."""
    a = make_peer(server.url, "pressure", "native", monkeypatch)
    b = make_peer(server.url, "pressure", "native", monkeypatch, download_dir=tmp_path)
    files: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    b.on("file", lambda _s, received: files.set_result(received))
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1000 * 1000))
    async with a, b:
        await upgraded(a, b)
        path = a._links[b.id].webrtc
        assert path is not None
        channel = path.channel
        assert isinstance(channel.transport, NativePeerConnection)
        highest = 0
        original = channel.send

        def watched(data: bytes) -> None:
            nonlocal highest
            original(data)
            highest = max(highest, channel.bufferedAmount)

        channel.send = watched
        digest = await asyncio.wait_for(a.send_file(b.id, source), 60)
        assert digest == (await asyncio.wait_for(files, WAIT)).sha256
    assert highest > DATA_CHANNEL_MESSAGE_BYTES  # the channel did fill up ...
    assert highest <= DATA_CHANNEL_HIGH_WATER_BYTES + DATA_CHANNEL_MESSAGE_BYTES  # ... boundedly


async def test_remote_close_downgrades_and_reupgrades_without_loss(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = make_peer(server.url, "lose", "native", monkeypatch)
    b = make_peer(server.url, "lose", "native", monkeypatch)
    at_b = Inbox(b, 300)
    downgrades: asyncio.Queue[str] = asyncio.Queue()
    b.on("downgrade", lambda sender, _d: downgrades.put_nowait(sender))
    async with a, b:
        await upgraded(a, b)
        first = connection(a, b)
        for n in range(100):
            await a.emit("n", n, to=b.id)
        a._links[b.id].webrtc.channel.close()  # type: ignore[union-attr]
        for n in range(100, 200):
            await a.emit("n", n, to=b.id)
        assert await asyncio.wait_for(downgrades.get(), WAIT) == a.id
        await upgraded(a, b)
        assert connection(a, b) is not first
        for n in range(200, 300):
            await a.emit("n", n, to=b.id)
        await asyncio.wait_for(at_b.done.wait(), WAIT)
    assert at_b.got == list(range(300))


async def test_a_failed_native_set_up_is_retried_at_once(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed native set-up (see ``dtls_client_offer``) is retried without the usual delay."""
    monkeypatch.setattr(negotiation, "RETRY_FIRST", 60.0)  # a usual retry outlasts WAIT
    real = NativePeerConnection.setRemoteDescription
    failed: list[str] = []

    async def fail_once(self: NativePeerConnection, description: Any) -> None:
        if description.type == "answer" and not failed:
            failed.append(description.sdp)
            raise NativeError("setRemoteDescription failed, as in libdatachannel's set-up race")
        await real(self, description)

    monkeypatch.setattr(NativePeerConnection, "setRemoteDescription", fail_once)
    a = make_peer(server.url, "race", "native", monkeypatch)
    b = make_peer(server.url, "race", "native", monkeypatch)
    async with a, b:
        await upgraded(a, b)
    assert len(failed) == 1


async def test_quick_retries_are_bounded_then_the_back_off_applies(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A remote whose answers always fail costs NATIVE_QUICK_RETRIES quick tries, then RETRY_FIRST."""
    real_after = negotiation.Negotiator._after
    delays: list[float] = []
    backed_off = asyncio.Event()

    def after(self: negotiation.Negotiator, delay: float, command: tuple[str, Any]) -> None:
        if command[0] == "attempt":
            delays.append(delay)
            if delay == negotiation.RETRY_FIRST:
                backed_off.set()
        real_after(self, delay, command)

    real_set = NativePeerConnection.setRemoteDescription

    async def answers_fail(self: NativePeerConnection, description: Any) -> None:
        if description.type == "answer":
            raise NativeError("setRemoteDescription failed")
        await real_set(self, description)

    monkeypatch.setattr(negotiation.Negotiator, "_after", after)
    monkeypatch.setattr(NativePeerConnection, "setRemoteDescription", answers_fail)
    a = make_peer(server.url, "hostile", "native", monkeypatch)
    b = make_peer(server.url, "hostile", "native", monkeypatch)
    async with a, b:
        await asyncio.wait_for(backed_off.wait(), WAIT)
    quick = [negotiation.NATIVE_RETRY] * negotiation.NATIVE_QUICK_RETRIES
    assert delays == [*quick, negotiation.RETRY_FIRST]


async def open_pair(lib: Any) -> tuple[NativePeerConnection, NativePeerConnection, Any]:
    """Two connected native connections in this process and the offerer's open channel.

    An attempt can fail (see ``dtls_client_offer``: libdatachannel may check the
    answerer's certificate before it stored the answer); it is closed like any
    other and the next one is made, at most three, as the Negotiator retries.
    """
    for _ in range(3):
        a, b = NativePeerConnection(lib), NativePeerConnection(lib)
        opened = asyncio.Event()
        channel = a.createDataChannel("rtc-peer")
        channel.on("open", opened.set)
        b.on("datachannel", lambda remote: remote.on("message", lambda _m: None))
        try:
            await a.setLocalDescription(await a.createOffer())
            offer = a.localDescription
            offer.sdp = dtls_client_offer(offer.sdp)
            await b.setRemoteDescription(offer)
            await b.setLocalDescription(await b.createAnswer())
            await a.setRemoteDescription(b.localDescription)
            await asyncio.wait_for(opened.wait(), 5)
            return a, b, channel
        except (NativeError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(a.close(), b.close()), WAIT)
    raise AssertionError("no native connection opened in three attempts")


async def test_close_never_hangs_under_traffic() -> None:
    """Connections closed while data flows, twenty times: every close returns in bounded time."""
    lib = library.load()
    for _ in range(20):
        a, b, channel = await open_pair(lib)
        for _ in range(64):
            channel.send(b"x" * DATA_CHANNEL_MESSAGE_BYTES)
        await asyncio.wait_for(asyncio.gather(a.close(), b.close()), WAIT)
        assert a.connectionState == b.connectionState == "closed"
        assert channel.readyState == "closed"


def test_library_of_another_version_is_not_used_and_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(library, "_tried", False)
    monkeypatch.setattr(library, "_lib", None)
    monkeypatch.setattr(library, "library_path",
                        lambda: Path("libs/libdatachannel-0123abcd.so.0.23.1"))
    with caplog.at_level(logging.WARNING, logger="peer.native"):
        assert library.load() is None
        assert library.load() is None
        assert engine.native_library("auto", media=False, transport_policy="all") is None
    warnings = [r for r in caplog.records
                if "made for libdatachannel 0.22.x or 0.24.x" in r.getMessage()]
    assert len(warnings) == 1
    assert "0.23.1" in warnings[0].getMessage()


def test_library_version_from_its_file_name() -> None:
    assert library.library_version(Path("libdatachannel-ad68f30b.so.0.22.2")) == "0.22.2"
    assert library.library_version(Path("libdatachannel.so.0.22.6")) == "0.22.6"
    assert library.library_version(Path("libdatachannel.so")) is None
    assert library.library_version(Path("libdatachannel.so.0.24.2")) == "0.24.2"
    assert library.version_matches("0.22.2")
    assert library.version_matches("0.24.2")
    assert not library.version_matches("0.23.0")
    assert not library.version_matches("0.25.0")
    assert not library.version_matches("0.2.22")
    assert not library.version_matches(None)


def test_the_optimised_build_is_preferred_and_the_setting_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiolibdatachannel's 0.24 before pylibdatachannel's 0.22; RTC_NATIVE_LIBRARY before both."""
    (tmp_path / "aiolibdatachannel" / "_lib").mkdir(parents=True)
    (tmp_path / "pylibdatachannel").mkdir()
    (tmp_path / "pylibdatachannel.libs").mkdir()
    for name in ("aiolibdatachannel/_lib/libdatachannel.so.0.24.2",
                 "aiolibdatachannel/_lib/libdatachannel.so",  # the links beside it are skipped
                 "pylibdatachannel.libs/libdatachannel-ad68f30b.so.0.22.2"):
        (tmp_path / name).touch()
    monkeypatch.setattr(library, "_package_dir", lambda name: tmp_path / name)
    monkeypatch.delenv("RTC_NATIVE_LIBRARY", raising=False)
    assert [p.name for p in library.installed_libraries()] == [
        "libdatachannel.so.0.24.2", "libdatachannel-ad68f30b.so.0.22.2"]
    assert library.library_path() == tmp_path / "aiolibdatachannel/_lib/libdatachannel.so.0.24.2"
    monkeypatch.setattr(library, "_package_dir",
                        lambda name: None if name == "aiolibdatachannel" else tmp_path / name)
    assert library.library_path() == tmp_path / "pylibdatachannel.libs/libdatachannel-ad68f30b.so.0.22.2"
    monkeypatch.setenv("RTC_NATIVE_LIBRARY", "/opt/lib/libdatachannel.so.0.24.1")
    assert library.library_path() == Path("/opt/lib/libdatachannel.so.0.24.1")


def test_scripts_test_installs_the_pinned_optimised_build() -> None:
    """scripts/test's aiolibdatachannel for Python 3.11 is the one [peer] pins for 3.12+."""
    import re
    import tomllib

    from tests.helpers.server import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = {r.split(";")[0].strip() for r in extras["peer"] if r.startswith("aiolibdatachannel")}
    script = re.findall(r'^AIOLIBDATACHANNEL="([^"]+)"', (ROOT / "scripts/test").read_text(), re.MULTILINE)
    assert pins == set(script) and len(pins) == 1


async def run_child(script: str, **env: str) -> tuple[int, str, str]:
    """``python -c script`` from the checkout (bounded at 60 s): exit status, stdout, stderr."""
    import sys

    from tests.helpers.server import ROOT

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


ONE_MESSAGE = """
import asyncio
from peer.native import library
from tests.peer.test_native_engine import open_pair

async def main():
    lib = library.load()
    a, b, channel = await open_pair(lib)
    got = asyncio.get_running_loop().create_future()
    channel.on("message", got.set_result)
    async with asyncio.timeout(10):
        while not b._channels:  # b's side of the channel opens on its own thread
            await asyncio.sleep(0.01)
    next(iter(b._channels.values())).send(b"pong")
    print(library.library_version(library.library_path()), (await asyncio.wait_for(got, 10)).decode())
    await asyncio.gather(a.close(), b.close())

asyncio.run(main())
"""


@pytest.mark.parametrize("path", library.installed_libraries(), ids=lambda path: path.name)
async def test_every_installed_library_carries_data(path: Path) -> None:
    """Each bundled build (the preferred one and its fallback) connects and carries a message."""
    code, out, err = await run_child(ONE_MESSAGE, RTC_NATIVE_LIBRARY=str(path))
    assert out.split() == [library.library_version(path), "pong"], err
    assert code == 0, err


async def test_engine_setting_values(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTC_PEER_ENGINE", "quantum")
    with pytest.raises(ValueError, match="RTC_PEER_ENGINE"):
        Peer(server.url, "engines")
    monkeypatch.setenv("RTC_PEER_ENGINE", "native")
    monkeypatch.setattr(library, "_tried", True)
    monkeypatch.setattr(library, "_lib", None)  # as if it could not be loaded
    with pytest.raises(engine.EngineUnavailable):
        Peer(server.url, "engines")
    Peer(server.url, "engines", webrtc=False)  # no WebRTC: no engine needed
    monkeypatch.undo()
    lib = library.load()
    assert engine.native_library("auto", media=False, transport_policy="all") is lib
    assert engine.native_library("native", media=False, transport_policy="all") is lib
    assert engine.native_library("aiortc", media=False, transport_policy="all") is None
    assert engine.native_library("auto", media=True, transport_policy="all") is None
    assert engine.native_library("auto", media=False, transport_policy="relay") is None


async def test_aiortc_setting_keeps_every_connection_on_aiortc(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = make_peer(server.url, "old", "aiortc", monkeypatch)
    b = make_peer(server.url, "old", "aiortc", monkeypatch)
    async with a, b:
        await upgraded(a, b)
        assert isinstance(connection(a, b), RTCPeerConnection)
        assert isinstance(connection(b, a), RTCPeerConnection)


def test_ice_server_urls_carry_encoded_credentials() -> None:
    from aiortc import RTCIceServer

    servers = [
        RTCIceServer(urls="stun:127.0.0.1:3478"),
        RTCIceServer(urls=["turn:127.0.0.1:3478?transport=udp", "turns:x:5349",
                           "turn:127.0.0.1:3478?transport=tcp"],
                     username="1712345678:peer/id", credential="p@ss:w"),
    ]
    assert ice_server_urls(servers) == [
        "stun:127.0.0.1:3478",
        "turn:1712345678%3Apeer%2Fid:p%40ss%3Aw@127.0.0.1:3478?transport=udp",
    ]


EXIT_WITH_TRAFFIC = """
import asyncio
from peer.native import library
from tests.peer.test_native_engine import open_pair

async def main():
    a, b, channel = await open_pair(library.load())
    for _ in range(200):
        channel.send(b"y" * 65536)
    print("open", flush=True)

asyncio.run(main())  # returns with both connections open and data in flight
"""


async def test_exit_with_open_connections_is_clean() -> None:
    """Nobody closed them: the exit handler stops the library before Python finalizes."""
    for _ in range(3):
        code, out, err = await run_child(EXIT_WITH_TRAFFIC)
        assert out.strip() == "open", err
        assert code == 0, err
