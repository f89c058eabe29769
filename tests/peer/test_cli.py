"""``python -m peer send|receive`` as subprocesses against the real server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

import pytest

from tests.helpers.server import ROOT, RunningServer, running_server

WAIT = 60.0


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peer", *args, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("flags", [[], ["--relay-only"]], ids=["webrtc", "relay-only"])
async def test_send_and_receive(server: RunningServer, tmp_path: Path, flags: list[str]) -> None:
    data = os.urandom(3 * 1000 * 1000 + 17)
    source = tmp_path / "payload.bin"
    source.write_bytes(data)
    output = tmp_path / "out"
    room = "cli-" + ("relay" if flags else "webrtc")
    common = ["--server", server.url, "--room", room, *flags]
    # The sender first: it waits for a receiver to join.
    sender = await _run("send", *common, str(source))
    receiver = await _run("receive", *common, "--output", str(output))
    send_code, send_out, send_err = await _finish(sender)
    recv_code, recv_out, recv_err = await _finish(receiver)
    assert (send_code, recv_code) == (0, 0), send_err + recv_err
    digest = hashlib.sha256(data).hexdigest()
    assert (output / "payload.bin").read_bytes() == data
    assert digest in send_out and digest in recv_out
    assert ("via relay" in send_out) == bool(flags)
    assert "100%" in send_err  # plain progress lines when not on a terminal


async def test_server_down_is_one_line_and_nonzero(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    code, out, err = await _finish(
        await _run("send", "--server", "http://127.0.0.1:9", "--room", "r", str(source))
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: cannot reach the signaling server")


async def test_room_full_and_missing_file(tmp_path: Path) -> None:
    async with running_server("--max-peers-per-room", "1") as server:
        first = await _run("receive", "--server", server.url, "--room", "full",
                           "--output", str(tmp_path), "--timeout", "30")
        assert first.stderr is not None
        assert b"waiting in room" in await asyncio.wait_for(first.stderr.readline(), WAIT)
        code, _out, err = await _finish(
            await _run("receive", "--server", server.url, "--room", "full",
                       "--output", str(tmp_path))
        )
        assert code == 1 and err.strip() == (
            "error: the server refused: room-full: " + err.split("room-full: ", 1)[1].strip()
        )
        first.terminate()
        await first.wait()
    code, _out, err = await _finish(
        await _run("send", "--server", "http://127.0.0.1:9", "--room", "r", str(tmp_path / "nope"))
    )
    assert code == 1 and err.strip().startswith("error: no such file")


async def test_bad_arguments_exit_2() -> None:
    code, _out, err = await _finish(await _run("send", "--room", "r"))
    assert code == 2 and "--server" in err
