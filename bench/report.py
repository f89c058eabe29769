"""Summaries of repeated runs, the ratio table, and machine/version info."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .runner import RunResult
from .scenarios import Metric, Scenario
from .servers import BENCH_DIR, REPO_DIR

Stats = dict[str, Any]


def stats(values: list[float]) -> Stats | None:
    """Median, min, max and count of ``values`` (None when empty)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def summarize(scenarios: list[Scenario], runs: list[RunResult],
              servers: list[str]) -> dict[str, Any]:
    """Per scenario and server: stats of every metric and whether all runs were correct."""
    summary: dict[str, Any] = {}
    for sc in scenarios:
        entry: dict[str, Any] = {"title": sc.title, "servers": {}}
        for server in servers:
            mine = [r for r in runs if r.scenario == sc.name and r.server == server]
            if not mine:
                continue
            metrics: dict[str, Stats | None] = {}
            for m in sc.metrics:
                vals = [r.metrics[m.key] for r in mine if r.metrics.get(m.key) is not None]
                metrics[m.key] = stats([float(v) for v in vals])  # type: ignore[arg-type]
            entry["servers"][server] = {
                "metrics": metrics,
                "runs": len(mine),
                "correct": all(r.ok for r in mine),
                "errors": [r.error for r in mine if r.error],
            }
        summary[sc.name] = entry
    return summary


def ratio(summary: dict[str, Any], scenario: str, metric: str,
          num: str = "ours", den: str = "node") -> float | None:
    """Median of ``num`` over median of ``den`` for one metric, if both exist."""
    servers = summary.get(scenario, {}).get("servers", {})
    try:
        a = servers[num]["metrics"][metric]["median"]
        b = servers[den]["metrics"][metric]["median"]
    except (KeyError, TypeError):
        return None
    return a / b if b else None


def fmt(value: float | None) -> str:
    """A compact human rendering of one number."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_stats(st: Stats | None) -> str:
    """``median [min-max]`` (only the median for a single run)."""
    if not st:
        return "n/a"
    if st["n"] == 1:
        return fmt(st["median"])
    return f"{fmt(st['median'])} [{fmt(st['min'])}-{fmt(st['max'])}]"


def table_rows(scenarios: list[Scenario], summary: dict[str, Any],
               include_info: bool = False) -> list[list[str]]:
    """Rows: scenario, metric, ours, Node, ours/Node, better, correct."""
    rows = []
    for sc in scenarios:
        servers = summary.get(sc.name, {}).get("servers", {})
        for m in sc.metrics:
            if m.better == "info" and not include_info:
                continue
            cells = [fmt_stats(servers.get(s, {}).get("metrics", {}).get(m.key))
                     for s in ("ours", "node")]
            r = ratio(summary, sc.name, m.key)
            correct = " / ".join(
                ("yes" if servers[s]["correct"] else "NO") if s in servers else "-"
                for s in ("ours", "node"))
            rows.append([sc.name, f"{m.label} ({m.unit})", *cells,
                         "n/a" if r is None else f"{r:.2f}", better_word(m), correct])
    return rows


def better_word(m: Metric) -> str:
    return {"higher": "higher", "lower": "lower", "info": "-"}[m.better]


HEADER = ["scenario", "metric", "ours", "Node", "ours/Node", "better", "correct (ours / Node)"]


def render_text(rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in [HEADER, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[list[str]]) -> str:
    """The same table in GitHub Markdown."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _run(cmd: list[str], cwd: Path = REPO_DIR) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _npm_version(name: str) -> str:
    try:
        pkg = BENCH_DIR / "node_modules" / name / "package.json"
        return str(json.loads(pkg.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def source_digest(root: Path = REPO_DIR, package: str = "signaling") -> str:
    """A short hash of the server's source files, to notice edits during a run."""
    digest = hashlib.sha256()
    for path in sorted((root / package).rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:12]


def machine_info() -> dict[str, Any]:
    """The machine, OS, runtimes and library versions of this run."""
    py: dict[str, str] = {}
    for dist in ("aiohttp", "uvloop", "orjson"):
        try:
            py[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            py[dist] = "not installed"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": _run(["node", "--version"]),
        "socket.io": _npm_version("socket.io"),
        "socket.io-client": _npm_version("socket.io-client"),
        "python_packages": py,
        "git_commit": _run(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty_signaling": bool(_run(["git", "status", "--porcelain", "--", "signaling"])
                                    not in ("", "unknown")),
    }
