"""Start and stop the servers under test, pinned to one core."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LISTENING = re.compile(r"listening on (http://[^\s:]+:(\d+))")


class ServerError(RuntimeError):
    """A server did not start or did not say where it listens."""


@dataclass(frozen=True)
class ServerSpec:
    """How to launch one server: its short name, label, command and directory."""

    name: str
    label: str
    command: list[str]
    cwd: Path = REPO_DIR


def ours(extra_args: list[str] | None = None, cwd: Path = REPO_DIR) -> ServerSpec:
    """The project's server (from ``cwd``), without the per-connection rate limits."""
    cmd = [sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0",
           "--rate-limit", "0", "--rate-limit-bytes", "0", "--log-level", "warning",
           *(extra_args or [])]
    return ServerSpec("ours", "signaling (Python)", cmd, cwd)


def snapshot(ref: str, dest_root: Path, packages: tuple[str, ...] = ("signaling", "web")
             ) -> tuple[str, Path]:
    """Extract ``packages`` as of git ``ref`` under ``dest_root``; returns (commit, dir).

    Running the server from there keeps edits made to the working tree during
    a run (other people's work in progress) out of the measurement.
    """
    def git(*args: str) -> bytes:
        done = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, check=False)
        if done.returncode != 0:
            raise ServerError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace')}")
        return done.stdout

    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    dest = dest_root / f"src-{sha[:12]}"
    if not (dest / "signaling").is_dir():
        present = set(git("ls-tree", "--name-only", sha).decode().split())
        archive = git("archive", "--format=tar", sha, *[p for p in packages if p in present])
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return sha, dest


def node_reference() -> ServerSpec:
    """The Node socket.io 4.8 reference server in bench/reference-server.mjs."""
    cmd = ["node", str(BENCH_DIR / "reference-server.mjs"), "--host", "127.0.0.1", "--port", "0"]
    return ServerSpec("node", "Node socket.io 4.8", cmd)


def pinned(command: list[str], core: int | None) -> list[str]:
    """Prefix ``command`` with taskset so it runs on ``core`` only (if possible)."""
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


@dataclass
class RunningServer:
    """A started server process with the URL it printed."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    exit_code: int | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        return self.exit_code


def start(spec: ServerSpec, core: int | None, log_dir: Path, timeout: float = 20.0) -> RunningServer:
    """Start ``spec`` pinned to ``core`` and wait for its ``listening on`` line."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(pinned(spec.command, core), cwd=spec.cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return RunningServer(spec, proc, match.group(1), log_path)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise ServerError(f"{spec.label} did not start (exit {proc.returncode}):\n{tail}")


def ensure_npm_deps() -> None:
    """Install bench/node_modules from package-lock.json unless already there."""
    if (BENCH_DIR / "node_modules" / "socket.io-client" / "package.json").exists() and (
        BENCH_DIR / "node_modules" / "socket.io" / "package.json"
    ).exists():
        return
    if shutil.which("npm") is None:
        raise ServerError("npm is needed for the benchmark (Node.js 18 or newer)")
    flags = ["--no-audit", "--no-fund"]
    print("installing bench npm dependencies ...", file=sys.stderr)
    done = subprocess.run(["npm", "ci", *flags], cwd=BENCH_DIR, check=False)
    if done.returncode != 0:
        subprocess.run(["npm", "install", *flags], cwd=BENCH_DIR, check=True)
