"""Debian's coturn on loopback with ``use-auth-secret``, as docs/media.md sets it up.

Ready once it answers a STUN Binding request on its port. Relay ports come
from a small range of its own; everything is stopped when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.bounded import terminate

START_TIMEOUT = 15.0
MAGIC_COOKIE = 0x2112A442


@dataclass
class Coturn:
    port: int
    secret: str
    process: asyncio.subprocess.Process

    async def stop(self) -> None:
        await terminate(self.process)

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def server_flags(self, *extra: str) -> tuple[str, ...]:
        """The signaling server's flags that hand out this TURN server.

        ``--turn-secret=...`` in one argument: a random secret may start with "-",
        which argparse would take for an option (one test run in 64 failed so)."""
        return ("--turn-url", self.url, f"--turn-secret={self.secret}", *extra)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Reply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.got.done():
            self.got.set_result(data)


async def stun_answers(port: int) -> bool:
    """True when a STUN Binding request to 127.0.0.1:port gets a success response."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Reply, remote_addr=("127.0.0.1", port)
    )
    try:
        transport.sendto(struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + secrets.token_bytes(12))
        data = await asyncio.wait_for(protocol.got, 0.5)
        return data[:2] == b"\x01\x01"
    except TimeoutError:
        return False
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def running_coturn(
    directory: Path, *, port: int | None = None, secret: str | None = None
) -> AsyncIterator[Coturn]:
    """A coturn; ``port`` and ``secret`` given: a restart of an earlier one."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    port = port or free_udp_port()
    low = min(free_udp_port(), 65000)
    secret = secret or secrets.token_urlsafe(16)
    process = await asyncio.create_subprocess_exec(
        binary, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}",
        "--relay-ip=127.0.0.1", "--use-auth-secret", f"--static-auth-secret={secret}",
        "--realm=media.test", "--no-tls", "--no-dtls", "--no-cli", "--no-tcp", "--no-tcp-relay",
        f"--userdb={directory / 'turndb'}",
        "--allow-loopback-peers", "--no-multicast-peers",
        f"--min-port={low}", f"--max-port={low + 200}",
        f"--pidfile={directory / 'turnserver.pid'}", f"--log-file={directory / 'turn.log'}",
        "--simple-log",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ},
    )
    coturn = Coturn(port, secret, process)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            while not await stun_answers(port):
                if process.returncode is not None:
                    raise AssertionError(f"coturn exited with {process.returncode}")
        yield coturn
    finally:
        await coturn.stop()
