"""Run the load generator once against a running server and sample the server."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import procstat
from .scenarios import Scenario, metrics_from
from .servers import BENCH_DIR, RunningServer, pinned

LOADGEN = BENCH_DIR / "loadgen.mjs"


@dataclass
class RunResult:
    """One scenario run against one server."""

    scenario: str
    server: str
    repeat: int
    ok: bool
    metrics: dict[str, float | None] = field(default_factory=dict)
    samples: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _loadgen_command(server: RunningServer, scenario: Scenario, core: int | None) -> list[str]:
    cmd = ["node", str(LOADGEN), "--url", server.url, "--scenario", scenario.kind]
    for key, value in scenario.args.items():
        cmd += [f"--{key}", str(value)]
    return pinned(cmd, core)


def _on_mark(line: dict[str, Any], pid: int, samples: dict[str, float],
             cpu_start: list[float]) -> None:
    """Sample the server at a loadgen mark."""
    name = line["mark"]
    if name == "measure-start":
        cpu_start[:] = [time.monotonic(), procstat.cpu_seconds(pid) or 0.0,
                        procstat.machine_busy_seconds() or 0.0]
        samples["loadavg_1m"] = procstat.loadavg() or 0.0
    elif name == "measure-end" and cpu_start:
        wall = time.monotonic() - cpu_start[0]
        used = (procstat.cpu_seconds(pid) or 0.0) - cpu_start[1]
        busy = (procstat.machine_busy_seconds() or 0.0) - cpu_start[2]
        samples["server_cpu_s"] = used
        samples["server_cpu_util"] = used / wall if wall > 0 else 0.0
        samples["machine_busy_cores"] = busy / wall if wall > 0 else 0.0
    elif name == "idle-base":
        samples["rss_base_kib"] = float(procstat.rss_kib(pid) or 0)
    elif name == "idle-ready":
        samples["rss_ready_kib"] = float(procstat.rss_kib(pid) or 0)


def _follow(proc: subprocess.Popen[str], pid: int,
            samples: dict[str, float]) -> tuple[dict[str, Any] | None, str | None]:
    """Read loadgen lines until it exits: answer marks, return (result, error)."""
    assert proc.stdin is not None and proc.stdout is not None
    cpu_start: list[float] = []
    result: dict[str, Any] | None = None
    error: str | None = None
    for text in proc.stdout:
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if "mark" in line:
            _on_mark(line, pid, samples, cpu_start)
            if line.get("wait"):
                proc.stdin.write("continue\n")
                proc.stdin.flush()
        elif "result" in line:
            result = line["result"]
        elif "error" in line:
            error = line["error"]
    return result, error


def run_once(server: RunningServer, scenario: Scenario, repeat: int, core: int | None,
             timeout: float = 240.0) -> RunResult:
    """Run ``scenario`` against ``server``; never raises for a failed run."""
    samples: dict[str, float] = {}
    with tempfile.TemporaryFile(mode="w+") as stderr:
        with subprocess.Popen(_loadgen_command(server, scenario, core), cwd=BENCH_DIR,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=stderr, text=True, bufsize=1) as proc:
            killer = threading.Timer(timeout, proc.kill)
            killer.start()
            try:
                result, error = _follow(proc, server.pid, samples)
            finally:
                killer.cancel()
        stderr.seek(0)
        errors = stderr.read()[-1500:]
    if result is None:
        return RunResult(scenario.name, server.spec.name, repeat, False, samples=samples,
                         error=error or f"loadgen exit {proc.returncode}: {errors}")
    ok = bool(result.get("correctness", {}).get("ok", False))
    return RunResult(scenario.name, server.spec.name, repeat, ok,
                     metrics=metrics_from(scenario, result, samples), samples=samples, raw=result)
