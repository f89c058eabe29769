"""The signaling connection drops under a Peer: data channels keep going, then resume.

A small TCP proxy sits between one Peer and the server; ``cut()`` aborts its
connections (a TCP reset: a *lost* connection, not a leave) and refuses new
ones until ``restore()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from peer import Peer
from tests.helpers.server import RunningServer, running_server

WAIT = 15.0


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def cut(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self._cut = False

    async def close(self) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@contextlib.asynccontextmanager
async def proxied(server: RunningServer) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(server.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


class Box:
    """Events in arrival order; ``next(event)`` takes the oldest unread one of that name."""

    def __init__(self, peer: Peer, *events: str) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self._changed = asyncio.Condition()
        for event in events:
            peer.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(sender: str, data: Any) -> None:
            async with self._changed:
                self.events.append((event, sender, data))
                self._changed.notify_all()

        return record

    def unread(self) -> list[tuple[str, str, Any]]:
        return list(self.events)

    async def next(self, event: str) -> tuple[str, Any]:
        def find() -> int | None:
            return next((i for i, e in enumerate(self.events) if e[0] == event), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), WAIT)
            index = find()
            assert index is not None
            _name, sender, data = self.events.pop(index)
            return sender, data


async def test_data_channel_outlives_the_server_connection_then_resume(
    server: RunningServer,
) -> None:
    async with proxied(server) as proxy:
        a = Peer(proxy.url, "resume")
        b = Peer(server.url, "resume")
        plain = Peer(server.url, "resume", webrtc=False)
        at_a = Box(a, "msg", "upgrade", "signaling")
        at_b = Box(b, "msg", "peer-left", "upgrade")
        await a.connect()
        await b.connect()
        await plain.connect()
        try:
            await at_a.next("upgrade")
            await at_b.next("upgrade")
            old_id = a.id
            assert await at_a.next("signaling") == ("connected", old_id)

            proxy.cut()
            # The data channel does not need the server.
            await a.emit("msg", "over the channel", to=b.id)
            assert await at_b.next("msg") == (a.id, "over the channel")
            await b.emit("msg", "back over the channel", to=a.id)
            assert await at_a.next("msg") == (b.id, "back over the channel")
            # Relayed messages wait for a in the server's resume mailbox.
            await plain.emit("msg", "kept for you", to=a.id)

            proxy.restore()
            assert await at_a.next("signaling") == ("reconnecting", old_id)
            assert await at_a.next("signaling") == ("resumed", old_id)
            assert await at_a.next("msg") == (plain.id, "kept for you")
            await a.emit("msg", "relay works again", to=plain.id)
            assert a.transport(b.id) == "webrtc"
            assert at_b.unread() == []  # no peer-left, no second upgrade
        finally:
            await plain.close()
            await b.close()
            await a.close()


async def test_expired_resume_joins_afresh() -> None:
    async with running_server("--resume-grace", "1") as server, proxied(server) as proxy:
        a = Peer(proxy.url, "fresh", webrtc=False)
        b = Peer(server.url, "fresh", webrtc=False)
        at_b = Box(b, "peer-joined", "peer-left", "msg")
        at_a = Box(a, "signaling")
        async with a, b:
            old_id, _ = await at_b.next("peer-joined")
            assert old_id == a.id
            assert await at_a.next("signaling") == ("connected", old_id)
            proxy.cut()
            assert await at_a.next("signaling") == ("reconnecting", old_id)
            assert await at_b.next("peer-left") == (old_id, "disconnected")
            proxy.restore()
            new_id, _ = await at_b.next("peer-joined")
            assert new_id != old_id
            assert await at_a.next("signaling") == ("rejoined", new_id)
            assert a.id == new_id and set(a.peers) == {b.id}
            await a.emit("msg", "I am new", to=b.id)
            assert await at_b.next("msg") == (new_id, "I am new")
