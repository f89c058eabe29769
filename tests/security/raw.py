"""Raw Engine.IO / Socket.IO clients for the bad-input battery.

``RawWS`` speaks RFC 6455 over a bare asyncio stream, so a test can send any
frame (reserved bits, lying lengths, one byte per TCP send) and see exactly
how the server ends the connection: a close frame and its code, or the TCP
connection dropped (``EOF``). ``Polling`` does the same over raw HTTP
requests. ``ServerProbe`` reads the server process's RSS and open fds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.helpers.server import RunningServer

EOF = "eof"
WAIT = 5.0


class Ended(Exception):
    """The server ended the connection; ``how`` is a close code or ``EOF``."""

    def __init__(self, how: int | str) -> None:
        super().__init__(how)
        self.how = how


@dataclass
class Handshake:
    status: int
    headers: dict[str, str]
    body: bytes


class RawWS:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.handshake: Handshake | None = None

    # -- connection ------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        port: int,
        query: str = "EIO=4&transport=websocket",
        *,
        headers: dict[str, str] | None = None,
        extra: bytes = b"",
        rcvbuf: int | None = None,
        compress: bool = False,
    ) -> RawWS:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**24)
        ws = cls(reader, writer)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /socket.io/?{query} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if compress:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + extra)
        await writer.drain()
        ws.handshake = await ws._read_response()
        return ws

    async def _read_response(self) -> Handshake:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = b""
        if status != 101 and "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        return Handshake(status, headers, body)

    @property
    def status(self) -> int:
        assert self.handshake is not None
        return self.handshake.status

    def close_transport(self, rst: bool = False) -> None:
        if rst:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    # -- frames ----------------------------------------------------------
    @staticmethod
    def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0,
              length: int | None = None) -> bytes:
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 \
            else _mask_fast(payload, mask)
        return head + mask + body

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_text(self, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        await self.send_raw(self.frame(0x1, data))

    async def send_binary(self, data: bytes) -> None:
        await self.send_raw(self.frame(0x2, data))

    async def recv_frame(self, timeout: float = WAIT) -> tuple[int, bytes]:
        """Next data frame (opcode, payload); raises ``Ended`` on close or EOF."""
        while True:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
                n = head[1] & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                payload = await asyncio.wait_for(self.reader.readexactly(n), timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                raise Ended(EOF) from None
            opcode = head[0] & 0x0F
            if opcode == 0x8:
                raise Ended(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005)
            if opcode == 0x9:
                await self.send_raw(self.frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            return opcode, payload

    async def ended(self, timeout: float = WAIT) -> int | str:
        """Read until the server ends the connection; the close code or ``EOF``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("server kept the connection open")
            try:
                await self.recv_frame(left)
            except Ended as end:
                return end.how


def _mask_fast(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


class EioWS(RawWS):
    """A raw websocket that speaks Engine.IO: answers pings, splits packets."""

    sid: str = ""
    sio_sid: str = ""
    open_info: dict[str, Any]

    @classmethod
    async def open(cls, server: RunningServer, *, headers: dict[str, str] | None = None,
                   rcvbuf: int | None = None) -> EioWS:
        ws = await cls.connect(server.port, headers=headers, rcvbuf=rcvbuf)
        assert ws.status == 101, ws.handshake
        assert isinstance(ws, EioWS)
        first = await ws.next_packet()
        assert isinstance(first, str) and first.startswith("0"), first
        ws.open_info = json.loads(first[1:])
        ws.sid = ws.open_info["sid"]
        return ws

    async def next_packet(self, timeout: float = WAIT) -> str | bytes:
        """The next Engine.IO packet that is not a ping (pings are answered)."""
        while True:
            opcode, payload = await self.recv_frame(timeout)
            if opcode == 0x2:
                return payload
            text = payload.decode()
            if text == "2":
                await self.send_text("3")
                continue
            return text

    async def sio_connect(self, auth: Any = None) -> str:
        await self.send_text("40" + (json.dumps(auth) if auth is not None else ""))
        reply = await self.next_message()
        assert isinstance(reply, str) and reply.startswith("0{"), reply
        self.sio_sid = json.loads(reply[1:])["sid"]
        return reply

    async def next_message(self, timeout: float = WAIT) -> str | bytes:
        """The next Engine.IO message packet's payload (the Socket.IO packet)."""
        while True:
            pkt = await self.next_packet(timeout)
            if isinstance(pkt, bytes):
                return pkt
            if pkt.startswith("4"):
                return pkt[1:]

    async def call(self, event: str, payload: Any, ack_id: int = 1, timeout: float = WAIT) -> Any:
        await self.send_text(f"42{ack_id}" + json.dumps([event, payload], separators=(",", ":")))
        prefix = f"3{ack_id}["
        while True:
            msg = await self.next_message(timeout)
            if isinstance(msg, str) and msg.startswith(prefix):
                return json.loads(msg[len(prefix) - 1:])[0]

    async def answer_pings_until_end(self, timeout: float) -> int | str:
        try:
            while True:
                await self.next_packet(timeout)
        except Ended as end:
            return end.how


async def eio_ws(server: RunningServer, **kwargs: Any) -> EioWS:
    ws = await EioWS.open(server, **kwargs)
    return ws


class Polling:
    """Engine.IO over raw HTTP requests."""

    def __init__(self, server: RunningServer, http: aiohttp.ClientSession) -> None:
        self.base = f"{server.url}/socket.io/"
        self.http = http
        self.sid = ""

    async def open(self, headers: dict[str, str] | None = None) -> Polling:
        async with self.http.get(self.base, params={"EIO": "4", "transport": "polling"},
                                 headers=headers) as r:
            text = await r.text()
            assert r.status == 200, (r.status, text)
        assert text.startswith("0{"), text
        self.sid = json.loads(text[1:])["sid"]
        return self

    async def post(self, body: str | bytes, **kwargs: Any) -> tuple[int, str]:
        async with self.http.post(self.base, params={"EIO": "4", "transport": "polling",
                                                     "sid": self.sid}, data=body, **kwargs) as r:
            return r.status, await r.text()

    async def get(self, timeout: float = WAIT) -> tuple[int, str]:
        async with self.http.get(self.base, params={"EIO": "4", "transport": "polling",
                                                    "sid": self.sid},
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, await r.text()

    async def sio_connect(self, auth: Any = None) -> None:
        status, _ = await self.post("40" + (json.dumps(auth) if auth is not None else ""))
        assert status == 200
        status, text = await self.get()
        assert status == 200 and "40{" in text, text

    async def gone(self, timeout: float = WAIT) -> bool:
        """Whether the session is closed: a GET answers 400, or the close packet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            status, text = await self.get(timeout=max(0.1, deadline - loop.time()))
            if status == 400 or text.endswith("1") or "\x1e1" in text or text == "1":
                return True
        return False


# -- the server process --------------------------------------------------
def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: what a hostile input costs the
    server, unlike wall-clock time, does not depend on how busy the machine is."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"Threads:\s+(\d+)", f.read()).group(1))  # type: ignore[union-attr]


@dataclass
class Baseline:
    rss: int
    fds: int


def baseline(server: RunningServer) -> Baseline:
    return Baseline(rss_bytes(server.pid), open_fds(server.pid))


async def back_to_baseline(server: RunningServer, base: Baseline, *, rss_slack: int = 5 << 20,
                           within: float = 2.0) -> None:
    """The P condition: alive, and fds and RSS back to the baseline within ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        assert server.process.returncode is None, "server died:\n" + server.log()
        rss, fds = rss_bytes(server.pid), open_fds(server.pid)
        if fds <= base.fds and rss <= base.rss + rss_slack:
            return
        if loop.time() > deadline:
            raise AssertionError(
                f"not back to baseline: fds {fds} (was {base.fds}), "
                f"RSS +{(rss - base.rss) / 2**20:.1f} MB"
            )
        await asyncio.sleep(0.05)


async def metric(server: RunningServer, name: str, http: aiohttp.ClientSession | None = None) -> float:
    """Sum of a metric's samples whose line starts with ``name``."""
    own = http is None
    session = http or aiohttp.ClientSession()
    try:
        async with session.get(f"{server.url}/metrics") as r:
            text = await r.text()
    finally:
        if own:
            await session.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total
