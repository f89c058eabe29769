"""``python -m bench``: the project's server against Node socket.io, same load.

Each scenario runs ``--repeat`` times against a fresh server process per run
(pinned to one core), driven by ``bench/loadgen.mjs`` (pinned to another);
the table shows medians, [min-max] spread and the ratio ours/Node. Results go
to ``bench/results/``; ``--write-docs`` also regenerates ``docs/benchmarks.md``
and its plots.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, servers
from .profile import Profiler
from .profile import summarize as summarize_profile
from .runner import RunResult, run_once
from .scenarios import Scenario, all_scenarios


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short runs, one repeat, fewer connections (under a minute)")
    p.add_argument("--scenarios", nargs="+", metavar="NAME",
                   help="only these scenarios (names or prefixes, e.g. windowed latency)")
    p.add_argument("--repeat", type=int, help="runs per scenario and server (default 3, quick 1)")
    p.add_argument("--servers", default="ours,node",
                   help="comma-separated: ours, node (default both)")
    p.add_argument("--ours-args", default="",
                   help="extra flags for `python -m signaling`, given with '=': "
                        "--ours-args='--log-level error'")
    p.add_argument("--ours-ref", metavar="GIT_REF",
                   help="run our server from a snapshot of this commit (e.g. HEAD) instead of "
                        "the working tree, so edits made meanwhile do not mix into the run")
    p.add_argument("--server-core", type=int, default=0, help="core for the server (default 0)")
    p.add_argument("--loadgen-core", type=int, default=1, help="core for the load generator")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    p.add_argument("--write-docs", action="store_true",
                   help="regenerate docs/benchmarks.md and docs/img/*.png from this run")
    p.add_argument("--profile", action="store_true",
                   help="sample our server with py-spy during each run (stacks and a "
                        "summary of the hottest functions go to bench/results/)")
    p.add_argument("--max-noise", type=float, metavar="CORES",
                   help="retry a run (3 tries, the quietest kept) when other processes used "
                        "more CPU than this during its measured window, e.g. 0.2")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p.parse_args(argv)


def select(scenarios: list[Scenario], wanted: list[str] | None) -> list[Scenario]:
    """Scenarios whose name equals or starts with one of ``wanted``."""
    if not wanted:
        return scenarios
    names = [w for item in wanted for w in item.split(",") if w]
    chosen = [s for s in scenarios if any(s.name == n or s.name.startswith(n) for n in names)]
    if not chosen:
        raise SystemExit(f"no scenario matches {names}; try --list")
    return chosen


def headline(run: RunResult, scenario: Scenario) -> str:
    """One progress line for a finished run."""
    if run.error:
        return f"ERROR {run.error.splitlines()[0][:200]}"
    parts = [f"{m.label} {report.fmt(run.metrics.get(m.key))} {m.unit}"
             for m in scenario.metrics if m.better != "info"]
    return ", ".join(parts) + ("" if run.ok else "  CORRECTNESS FAILED")


@dataclass(frozen=True)
class Config:
    """Where results go and how processes are pinned, for one invocation."""

    stamp: str
    results_dir: Path
    server_core: int | None
    loadgen_core: int | None
    profile: bool


def measure(cfg: Config, spec: servers.ServerSpec, sc: Scenario, rep: int,
            prefix: str) -> RunResult:
    """Start a fresh server, run the scenario once (profiled if asked), stop it."""
    server = servers.start(spec, cfg.server_core, cfg.results_dir / f"logs-{cfg.stamp}" /
                           f"{sc.name}-{rep}")
    spy = None
    if cfg.profile and spec.name == "ours":
        cfg.results_dir.mkdir(parents=True, exist_ok=True)
        spy = Profiler(server.pid, cfg.results_dir / f"profile-{cfg.stamp}-{sc.name}-{rep}.txt",
                       cfg.loadgen_core)
    try:
        run = run_once(server, sc, rep, cfg.loadgen_core)
    finally:
        stacks = spy.stop() if spy else None
        exit_code = server.stop()
    run.samples["server_exit_code"] = float(exit_code if exit_code is not None else -1)
    if stacks:
        text = summarize_profile(stacks)
        stacks.with_suffix(".summary.txt").write_text(text)
        print(f"{prefix} profile {stacks.with_suffix('.summary.txt')}\n"
              + "\n".join(text.splitlines()[:14]), file=sys.stderr)
    return run


def measure_quietest(cfg: Config, spec: servers.ServerSpec, sc: Scenario, rep: int,
                     max_noise: float | None, prefix: str, tries: int = 3) -> RunResult:
    """``measure``; with ``max_noise``, retry a run during which other processes
    used more CPU than that (up to ``tries`` in all) and keep the quietest."""
    best: RunResult | None = None
    for attempt in range(tries if max_noise is not None else 1):
        run = measure(cfg, spec, sc, rep, prefix)
        noise = run.metrics.get("other_cpu")
        if best is None or (noise or 0.0) < (best.metrics.get("other_cpu") or 0.0):
            best = run
        if max_noise is None or noise is None or noise <= max_noise or attempt + 1 == tries:
            break
        print(f"{prefix} other processes used {noise:.2f} cores, trying again "
              f"({attempt + 2}/{tries})", file=sys.stderr)
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for sc in all_scenarios(args.quick):
            print(f"{sc.name:14} {sc.title}")
        return 0
    scenarios = select(all_scenarios(args.quick), args.scenarios)
    repeat = args.repeat or (1 if args.quick else 3)
    server_core = None if args.no_pin else args.server_core
    loadgen_core = None if args.no_pin else args.loadgen_core
    results_dir = servers.BENCH_DIR / "results"
    ours_dir, ours_source = servers.REPO_DIR, "working tree"
    if args.ours_ref:
        sha, ours_dir = servers.snapshot(args.ours_ref, results_dir)
        ours_source = f"commit {sha[:10]}"
    specs = {"ours": servers.ours(shlex.split(args.ours_args), ours_dir),
             "node": servers.node_reference()}
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(wanted) - set(specs)
    if unknown:
        raise SystemExit(f"unknown server(s): {', '.join(sorted(unknown))}")
    servers.ensure_npm_deps()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    cfg = Config(stamp, results_dir, server_core, loadgen_core, args.profile)
    digest_before = report.source_digest(ours_dir)
    started = time.monotonic()
    runs: list[RunResult] = []
    broken: dict[str, str] = {}
    plan = [(rep, sc, name) for rep in range(repeat) for sc in scenarios
            # Alternate which server goes first so slow drift hits both alike.
            for name in (wanted if rep % 2 == 0 else list(reversed(wanted)))]
    interrupted = False
    try:
        for done, (rep, sc, name) in enumerate(plan, 1):
            if name in broken:
                continue
            prefix = f"[{done}/{len(plan)}] {sc.name} {name} #{rep + 1}:"
            try:
                run = measure_quietest(cfg, specs[name], sc, rep, args.max_noise, prefix)
            except servers.ServerError as exc:
                broken[name] = str(exc)
                print(f"{prefix} server did not start, skipping it:\n{exc}", file=sys.stderr)
                continue
            runs.append(run)
            print(f"{prefix} {headline(run, sc)}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: reporting the runs done so far", file=sys.stderr)

    summary = report.summarize(scenarios, runs, wanted)
    rows = report.table_rows(scenarios, summary)
    print(report.render_text(rows))
    elapsed = time.monotonic() - started
    doc: dict[str, Any] = {
        "started_utc": stamp,
        "elapsed_s": round(elapsed, 1),
        "quick": args.quick,
        "repeat": repeat,
        "pinning": {"server_core": server_core, "loadgen_core": loadgen_core},
        "max_noise": args.max_noise,
        "interrupted": interrupted,
        "commands": {k: specs[k].command for k in wanted},
        "machine": report.machine_info(),
        "server_source": {"before": digest_before, "after": report.source_digest(ours_dir),
                          "from": ours_source},
        "scenarios": {sc.name: {"title": sc.title, "kind": sc.kind, "args": sc.args}
                      for sc in scenarios},
        "summary": summary,
        "server_failures": broken,
        "runs": [r.to_json() for r in runs],
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"bench-{stamp}.json"
    text = json.dumps(doc, indent=1)
    out.write_text(text)
    (results_dir / "latest.json").write_text(text)
    all_ok = all(r.ok for r in runs)
    print(f"\n{len(runs)} runs in {elapsed:.0f} s; correctness "
          f"{'OK' if all_ok else 'FAILED (see the correct column)'}; results: {out}")
    if doc["server_source"]["before"] != doc["server_source"]["after"]:
        print("warning: signaling/ changed during the run; the runs measured different code",
              file=sys.stderr)
    if broken:
        print("not measured: " + ", ".join(sorted(broken)), file=sys.stderr)
    if args.write_docs and not interrupted:
        from . import docs

        written = docs.write(doc, scenarios, rows)
        print("wrote " + ", ".join(str(p) for p in written))
    return 0 if all_ok and not broken and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
