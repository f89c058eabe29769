"""``python -m peer send|receive`` as subprocesses against the real server."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import pty
import select
import signal
import struct
import sys
import termios
from pathlib import Path

import pytest

from peer.cli import Progress
from tests.helpers.clients import RecordingClient
from tests.helpers.server import ROOT, RunningServer, running_server

WAIT = 60.0


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peer", *args, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _stderr_line(process: asyncio.subprocess.Process, text: str) -> str:
    """Read stderr lines (bounded) until one contains ``text``."""
    assert process.stderr is not None
    async with asyncio.timeout(WAIT):
        while line := (await process.stderr.readline()).decode():
            if text in line:
                return line
    raise AssertionError(f"{text!r} never printed")


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
    lines = err.splitlines()  # what it tried, then one line of error
    assert lines == ["connecting to http://127.0.0.1:9", lines[-1]]
    assert lines[-1].startswith("error: cannot reach the signaling server")


async def test_room_full_and_missing_file(tmp_path: Path) -> None:
    async with running_server("--max-peers-per-room", "1") as server:
        first = await _run("receive", "--server", server.url, "--room", "full",
                           "--output", str(tmp_path), "--timeout", "30")
        await _stderr_line(first, "waiting in room")
        code, _out, err = await _finish(
            await _run("receive", "--server", server.url, "--room", "full",
                       "--output", str(tmp_path))
        )
        assert code == 1 and err.splitlines()[-1] == (
            "error: the server refused: room-full: " + err.split("room-full: ", 1)[1].strip()
        )
        first.terminate()
        await first.wait()
    code, _out, err = await _finish(
        await _run("send", "--server", "http://127.0.0.1:9", "--room", "r", str(tmp_path / "nope"))
    )
    assert code == 2 and err == f"python -m peer send: error: no such file: {tmp_path / 'nope'}\n"


async def test_bad_arguments_exit_2() -> None:
    code, _out, err = await _finish(await _run("send", "--room", "r"))
    assert code == 2 and "--server" in err


@pytest.mark.parametrize("args, complaint", [
    (["send", "--server", "127.0.0.1:8080", "--room", "r", "README.md"],
     "argument --server: expected a URL like http://127.0.0.1:8080, got '127.0.0.1:8080'"),
    (["send", "--server", "notaurl", "--room", "r", "README.md"],
     "argument --server: expected a URL like http://127.0.0.1:8080, got 'notaurl'"),
    (["send", "--server", "http://127.0.0.1:9", "--room", "r", "peer"],
     "peer is a directory; send takes one file"),
    (["receive", "--server", "http://127.0.0.1:9", "--room", "r", "--timeout", "-1"],
     "argument --timeout: expected a number of seconds above 0, got '-1'"),
    (["receive", "--server", "http://127.0.0.1:9", "--room", "r", "--timeout", "nan"],
     "argument --timeout: expected a number of seconds above 0, got 'nan'"),
    (["receive", "--server", "http://127.0.0.1:9", "--room", "r", "--output", "README.md"],
     "--output README.md is a file; give a directory"),
    (["receive", "--server", "http://127.0.0.1:9", "--room", "r", "--max-size", "0"],
     "argument --max-size: expected a size of at least 1 byte, got '0'"),
    (["send", "--server", "http://127.0.0.1:9", "--room", "r", "--max-size", "1k", "README.md"],
     "README.md is "),
])
async def test_bad_arguments_are_one_line_before_connecting(args: list[str], complaint: str) -> None:
    code, out, err = await _finish(await _run(*args))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"python -m peer {args[0]}: error: ")
    assert complaint in err


async def test_version() -> None:
    code, out, _err = await _finish(await _run("--version"))
    assert code == 0 and out.startswith("python -m peer (rtc-signaling) ")


@pytest.mark.parametrize("command", ["send", "receive"])
async def test_ctrl_c_exits_130_with_one_line(server: RunningServer, tmp_path: Path,
                                              command: str) -> None:
    target = ["README.md"] if command == "send" else ["--output", str(tmp_path)]
    process = await _run(command, "--server", server.url, "--room", "ctrl-c", *target)
    said = await _stderr_line(process, "waiting")
    assert ("for a receiver" in said) == (command == "send")
    process.send_signal(signal.SIGINT)
    code, _out, err = await _finish(process)
    assert code == 130 and err == "interrupted\n"


async def test_forged_library_events_do_not_stop_receive(server: RunningServer,
                                                         tmp_path: Path) -> None:
    """Issue 13: one relay named ``file`` made receive exit 1 with an AttributeError."""
    output = tmp_path / "out"
    receiver = await _run("receive", "--server", server.url, "--room", "forge",
                          "--output", str(output))
    await _stderr_line(receiver, "waiting in room")
    forger = await RecordingClient().connect(server.url)
    try:
        await forger.join("forge")
        for event, data in [("file", {"path": "/etc/passwd", "name": "../../evil", "size": 1}),
                            ("file-progress", {"id": "x", "done": 1}),
                            ("file-failed", {"error": "boom"}),
                            ("peer-joined", {"meta": {"role": "receiver"}})]:
            ack = await forger.request("relay", {"room": "forge", "event": event, "data": data})
            assert ack["ok"], ack
    finally:
        await forger.disconnect()
    source = tmp_path / "real.txt"
    source.write_bytes(b"the real file")
    sender = await _run("send", "--server", server.url, "--room", "forge", str(source))
    send_code, _, send_err = await _finish(sender)
    recv_code, recv_out, recv_err = await _finish(receiver)
    assert (send_code, recv_code) == (0, 0), send_err + recv_err
    assert (output / "real.txt").read_bytes() == b"the real file"
    assert "Traceback" not in recv_err and "real.txt" in recv_out


async def test_max_size_refuses_a_bigger_file(server: RunningServer, tmp_path: Path) -> None:
    receiver = await _run("receive", "--server", server.url, "--room", "cap",
                          "--output", str(tmp_path / "out"), "--max-size", "1k")
    await _stderr_line(receiver, "waiting in room")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(1001))
    code, _out, err = await _finish(
        await _run("send", "--server", server.url, "--room", "cap", str(source)))
    assert code == 1 and "over this peer's limit of 1000" in err.splitlines()[-1]
    assert receiver.returncode is None  # still waiting for a file it accepts
    receiver.terminate()
    await _finish(receiver)
    assert not (tmp_path / "out" / "big.bin").exists()


def test_progress_bar_on_a_zero_column_terminal() -> None:
    """The bar and the summary both count in decimal MB; 0 columns still shows the bar."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 0, 0, 0))
    stream = os.fdopen(slave, "w", encoding="utf-8")
    try:
        bar = Progress("send x", 5_000_000, stream)
        bar.update(5_000_000)
        bar.close()
        stream.flush()
        shown = ""
        while select.select([master], [], [], 1.0)[0]:  # everything written, bounded
            shown += os.read(master, 65536).decode()
    finally:
        stream.close()
        os.close(master)
    assert "100%|" in shown and "5.00M/5.00M" in shown and "MiB" not in shown


async def test_without_the_peer_extra_it_gives_the_install_command() -> None:
    """aiortc missing (blocked here through sys.modules): one line with the pip command."""
    code = ("import runpy, sys; sys.modules['aiortc'] = None; sys.argv = ['peer', '--help']; "
            "runpy.run_module('peer', run_name='__main__', alter_sys=True)")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    status, out, err = await _finish(process)
    assert status == 1 and out == ""
    assert err == ("python -m peer: needs aiortc, which is not installed: "
                   "pip install 'rtc-signaling[peer]'\n")
