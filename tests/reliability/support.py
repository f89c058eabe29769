"""Helpers of the fault tests: loopback ICE, a lossy UDP shim, proxies, counters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice

from peer.aioice_fixes import is_stun
from tests.helpers.ports import free_port as free_port  # re-exported: the restart tests

WAIT = 15.0


@contextlib.contextmanager
def loopback_ice() -> Iterator[None]:
    """Make aioice gather host candidates on 127.0.0.1 only.

    aioice skips loopback and would use this machine's eth0 address; the
    tests stay on loopback."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def fd_count() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def task_count() -> int:
    return len(asyncio.all_tasks())


async def until(predicate: Callable[[], bool], timeout: float = WAIT, step: float = 0.05) -> None:
    """Poll ``predicate`` (bounded); raise TimeoutError when it stays false."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


# ------------------------------------------------------------ lossy UDP shim
@dataclass
class LossyLink:
    """Loss, delay and reorder for every datagram aioice receives (both peers
    of one process), emulating ``tc netem`` in process.

    Only non-STUN datagrams (DTLS, SCTP) are touched unless ``stun`` is set,
    so ICE and its consent checks are not what is measured. A reordered
    datagram is held ``reorder_extra`` seconds longer, so later ones pass it.
    """

    loss: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0
    reorder_extra: float = 0.05
    stun: bool = False
    seed: int = 1
    passed: int = 0
    dropped: int = 0
    reordered: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    @contextlib.contextmanager
    def installed(self) -> Iterator[LossyLink]:
        self._rng.seed(self.seed)
        original = aioice.ice.StunProtocol.datagram_received
        link = self

        def datagram_received(protocol: Any, data: bytes, addr: tuple[Any, ...]) -> None:
            if not link.stun and is_stun(data):
                original(protocol, data, addr)
                return
            if link._rng.random() < link.loss:
                link.dropped += 1
                return
            link.passed += 1
            hold = link.delay
            if link._rng.random() < link.reorder:
                link.reordered += 1
                hold += link.reorder_extra
            if hold <= 0:
                original(protocol, data, addr)
            else:
                asyncio.get_running_loop().call_later(hold, _late, original, protocol, data, addr)

        aioice.ice.StunProtocol.datagram_received = datagram_received
        try:
            yield self
        finally:
            aioice.ice.StunProtocol.datagram_received = original


def _late(original: Any, protocol: Any, data: bytes, addr: tuple[Any, ...]) -> None:
    with contextlib.suppress(Exception):
        original(protocol, data, addr)


# ------------------------------------------------------------------- proxies
class UpgradeRefusingProxy:
    """A TCP proxy in front of the server that breaks websocket upgrades and
    passes plain HTTP (polling) through.

    ``mode="refuse"``: every websocket handshake is answered ``400``.
    ``mode="swallow"``: the handshake goes through (101), then nothing the
    server sends on that websocket reaches the client, so the client's
    ``2probe`` is never answered and it never sends ``5``: the server holds a
    half-done upgrade.

    Each proxied request is forced to ``Connection: close`` so that every
    request arrives on a fresh connection and can be looked at.
    """

    def __init__(self, target_port: int, mode: str = "refuse") -> None:
        assert mode in ("refuse", "swallow")
        self.mode = mode
        self.target_port = target_port
        self.refused = 0
        self.passed = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> UpgradeRefusingProxy:  # noqa: PYI034
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.transport.abort()
            return
        lines = head.decode("latin-1").split("\r\n")
        upgrade = any(line.lower().startswith("upgrade:") and "websocket" in line.lower()
                      for line in lines)
        if upgrade and self.mode == "swallow":
            self.refused += 1
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            up_writer.write(head)
            try:
                answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), WAIT)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                writer.transport.abort()
                up_writer.transport.abort()
                return
            writer.write(answer)
            for source, sink in ((reader, up_writer), (up_reader, None)):
                task = asyncio.get_running_loop().create_task(_pipe(source, sink, writer))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        if upgrade:
            self.refused += 1
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        self.passed += 1
        kept = [line for line in lines if line and not line.lower().startswith("connection:")]
        head = ("\r\n".join(kept) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        up_writer.write(head)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(_pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter | None,
                also_close: asyncio.StreamWriter | None = None) -> None:
    """Copy ``source`` to ``sink`` (to nowhere when None) until EOF, then close."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            if sink is not None:
                sink.write(data)
                await sink.drain()
    for writer in (sink, also_close):
        if writer is not None:
            writer.close()
