"""Start the real server as a subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.bounded import within

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r"listening on (https?://[\d.]+:\d+)")
START_TIMEOUT = 20.0


@dataclass
class RunningServer:
    url: str
    process: asyncio.subprocess.Process
    stderr_lines: list[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return "".join(self.stderr_lines)

    async def log_line(self, text: str, timeout: float = 10.0) -> str:
        """Wait (bounded) until the server logs a line containing ``text``; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for line in self.stderr_lines:
                if text in line:
                    return line
            await asyncio.sleep(0.02)
        raise AssertionError(f"server never logged {text!r} within {timeout:g} s:\n{self.log()}")


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


@contextlib.asynccontextmanager
async def running_server(*flags: str, env: dict[str, str] | None = None) -> AsyncIterator[RunningServer]:
    """``python -m signaling --port 0 FLAGS`` until the block ends (then SIGTERM)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0", *flags,
        cwd=ROOT, env=full_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stderr_lines: list[str] = []
    collector = asyncio.create_task(_collect(process.stderr, stderr_lines))
    try:
        url = await asyncio.wait_for(_ready_url(process.stdout), START_TIMEOUT)
    except (TimeoutError, EOFError):
        process.kill()
        await within(process.wait(), f"server pid {process.pid} to exit after SIGKILL")
        await within(collector, f"server pid {process.pid}'s stderr to close")
        raise RuntimeError("server did not start:\n" + "".join(stderr_lines)) from None
    server = RunningServer(url, process, stderr_lines)
    try:
        yield server
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await within(process.wait(), f"server pid {process.pid} to exit after SIGKILL")
        # stderr ends when the process does (unless it left a child holding it)
        await within(collector, f"server pid {process.pid}'s stderr to close")


async def _ready_url(stdout: asyncio.StreamReader) -> str:
    while True:
        line = await stdout.readline()
        if not line:
            raise EOFError
        match = READY.search(line.decode())
        if match:
            return match.group(1)
