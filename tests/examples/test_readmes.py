"""Every example README's commands, run as written against a server this test starts.

The ``sh`` blocks of each ``examples/*/README.md`` are read, not copied: a
command changed in a README is the command run here. Three things differ
from a reader's terminal, and only those: ``pip install`` lines are skipped
(the test environment has the extras), the ``python -m signaling`` line is
replaced by the test's own server on a free loopback port (its other flags
kept), and ``127.0.0.1:8080`` (written or the scripts' default, through
``SIGNALING_SERVER_URL``) becomes that server's address. Each command runs
from a fresh directory that has the repository's ``examples`` in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from peer import Peer
from tests.helpers.server import ROOT, RunningServer, running_server

WAIT = 60.0
DEFAULT_ADDRESS = "127.0.0.1:8080"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def readme_commands(example: str) -> list[list[str]]:
    """The README's shell commands, one argv each, comments and ``&`` dropped."""
    text = (ROOT / "examples" / example / "README.md").read_text()
    commands = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv and argv[-1] == "&":
                argv = argv[:-1]
            if argv and argv[:2] != ["pip", "install"]:
                commands.append(argv)
    return commands


def server_flags(argv: list[str]) -> list[str]:
    """The flags of a ``python -m signaling`` line, without its port (the test picks one)."""
    assert argv[:3] == ["python", "-m", "signaling"], argv
    flags = argv[3:]
    if "--port" in flags:
        at = flags.index("--port")
        assert flags[at + 1] == "8080"
        del flags[at : at + 2]
    return flags


@dataclass
class Proc:
    argv: list[str]
    process: asyncio.subprocess.Process
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def line(self, text: str, stream: str = "out") -> str:
        """Wait (bounded) for a line containing ``text`` on stdout (or stderr)."""
        lines = self.out if stream == "out" else self.err
        async with asyncio.timeout(WAIT):
            while True:
                for line in lines:
                    if text in line:
                        return line
                if self.process.returncode is not None and all(r.done() for r in self.readers):
                    raise AssertionError(f"{self.argv} ended before {text!r}:\n{self.text()}")
                await asyncio.sleep(0.05)

    async def finish(self) -> int:
        async with asyncio.timeout(WAIT):
            code = await self.process.wait()
            await asyncio.gather(*self.readers)
        return code

    async def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return await self.finish()

    def text(self) -> str:
        return f"stdout:\n{''.join(self.out)}\nstderr:\n{''.join(self.err)}"


async def _pump(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


class Terminal:
    """Runs README commands as a reader would, from ``cwd``, against ``server``."""

    def __init__(self, server: RunningServer, cwd: Path) -> None:
        self.server = server
        self.cwd = cwd
        self.started: list[Proc] = []
        (cwd / "examples").symlink_to(ROOT / "examples")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                    "SIGNALING_SERVER_URL": server.url}

    async def start(self, argv: list[str], stdin: bool = False) -> Proc:
        assert argv[0] == "python", argv
        address = self.server.url.removeprefix("http://")
        args = [arg.replace(DEFAULT_ADDRESS, address) for arg in argv[1:]]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=self.cwd, env=self.env,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        proc = Proc(argv, process)
        proc.readers = [asyncio.create_task(_pump(process.stdout, proc.out)),
                        asyncio.create_task(_pump(process.stderr, proc.err))]
        self.started.append(proc)
        return proc

    async def close(self) -> None:
        for proc in self.started:
            if proc.process.returncode is None:
                proc.process.kill()
            await proc.process.wait()
            await asyncio.gather(*proc.readers)


@contextlib.asynccontextmanager
async def terminal(server_line: list[str], cwd: Path) -> AsyncIterator[Terminal]:
    """The README's server line, run by the test on a free port, and a terminal beside it."""
    async with running_server(*server_flags(server_line)) as server:
        shell = Terminal(server, cwd)
        try:
            yield shell
        finally:
            await shell.close()


def _quiet(proc: Proc) -> None:
    """Nothing on stderr but what the script says itself: no library log, no traceback."""
    err = "".join(proc.err)
    assert "Traceback" not in err, proc.text()
    assert not re.search(r"^(INFO|WARNING|DEBUG|ERROR) ", err, re.MULTILINE), proc.text()


def _big_iso(cwd: Path) -> str:
    data = os.urandom(2 * 1000 * 1000 + 3)
    (cwd / "big.iso").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def test_file_transfer(tmp_path: Path) -> None:
    commands = readme_commands("file_transfer")
    assert [c[1:3] for c in commands] == [
        ["-m", "signaling"], ["-m", "peer"], ["-m", "peer"],
        ["examples/file_transfer/transfer.py", "receive"],
        ["examples/file_transfer/transfer.py", "send"]]
    digest = _big_iso(tmp_path)
    async with terminal(commands[0], tmp_path) as shell:
        for receive_argv, send_argv in ((commands[1], commands[2]), (commands[3], commands[4])):
            receiver = await shell.start(receive_argv)
            await receiver.line("waiting in room files", "err" if "-m" in receive_argv else "out")
            sender = await shell.start(send_argv)
            assert await sender.finish() == 0, sender.text()
            assert await receiver.finish() == 0, receiver.text()
            assert digest in "".join(receiver.out), receiver.text()
            _quiet(receiver)
    saved = sorted(p.name for p in (tmp_path / "downloads").iterdir())
    assert saved == ["big (1).iso", "big.iso"]
    for name in saved:
        assert hashlib.sha256((tmp_path / "downloads" / name).read_bytes()).hexdigest() == digest


async def test_chat(tmp_path: Path) -> None:
    commands = readme_commands("chat")
    assert [c[1] for c in commands] == ["-m", "examples/chat/chat.py", "examples/chat/chat.py"]
    async with terminal(commands[0], tmp_path) as shell:
        ada = await shell.start(commands[1], stdin=True)
        await ada.line("* joined lobby as ada")
        bob = await shell.start(commands[2], stdin=True)
        await bob.line("* joined lobby as bob")
        await ada.line("* bob is here")
        assert bob.process.stdin is not None
        bob.process.stdin.write(b"hello ada\n")
        await bob.process.stdin.drain()
        await ada.line("<bob> hello ada")
        # stdin stays open: Ctrl-C must not wait for another line
        assert await ada.interrupt() == 130, ada.text()
        assert "".join(ada.err) == "interrupted\n", ada.text()
        await bob.line("* ada left (left)")
        assert await bob.interrupt() == 130, bob.text()
        assert "".join(bob.err) == "interrupted\n", bob.text()


async def test_python_answers_browser(tmp_path: Path) -> None:
    commands = readme_commands("python_answers_browser")
    assert [c[1] for c in commands] == ["-m", "examples/python_answers_browser/answer.py"]
    async with terminal(commands[0], tmp_path) as shell:
        answer = await shell.start(commands[1])
        await answer.line("in room lobby")
        # What the chat and files pages do, from a Python Peer (the same frames).
        source = tmp_path / "photo.jpg"
        source.write_bytes(os.urandom(300_000))
        chat: asyncio.Queue[str] = asyncio.Queue()
        echoed: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        browser = Peer(shell.server.url, "lobby", meta={"name": "tab"}, webrtc=False)
        browser.on("chat", lambda _s, data: chat.put_nowait(data["text"]))
        browser.on("ping", lambda _s, data: echoed.done() or echoed.set_result(data))
        async with browser:
            python_id = next(iter(browser.peers))
            assert await asyncio.wait_for(chat.get(), WAIT) == "hello from Python (aiortc)"
            await browser.emit("chat", {"text": "hi"}, to=python_id)
            assert await asyncio.wait_for(chat.get(), WAIT) == "python heard: hi"
            digest = await asyncio.wait_for(browser.send_file(python_id, source), WAIT)
            assert await asyncio.wait_for(chat.get(), WAIT) == f"saved photo.jpg, sha256 {digest}"
            await browser.emit("ping", b"\x01\x02\x03", to=python_id)
            assert await asyncio.wait_for(echoed, WAIT) == b"\x01\x02\x03"
        assert (tmp_path / "received" / "photo.jpg").read_bytes() == source.read_bytes()
        assert await answer.interrupt() == 130, answer.text()
        assert "".join(answer.err) == "interrupted\n", answer.text()


async def test_browser_video(tmp_path: Path) -> None:
    commands = readme_commands("browser_video")
    assert [c[1] for c in commands] == ["-m", "examples/browser_video/video_peer.py"]
    async with terminal(commands[0], tmp_path) as shell:
        video = await shell.start(commands[1])
        line = await video.line("joined demo")
        assert f"{shell.server.url}/call.html?room=demo" in line
        joined: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        watcher = Peer(shell.server.url, "demo", webrtc=False)
        watcher.on("peer-joined", lambda _id, info: joined.done() or joined.set_result(info.meta))
        async with watcher:
            assert (await asyncio.wait_for(joined, WAIT))["name"] == "Python (synthetic video)"
        assert await video.interrupt() == 130, video.text()
        assert "".join(video.err) == "interrupted\n", video.text()


def test_every_example_folder_has_a_test() -> None:
    tested = {"file_transfer", "chat", "python_answers_browser", "browser_video"}
    assert {p.name for p in (ROOT / "examples").iterdir() if p.is_dir()} == tested
