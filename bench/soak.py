"""Load and soak runs L1-L9 of the reliability battery, short or full.

    python -m bench.soak --variant short --scenario L3
    python -m bench.soak --variant short --scenario all
    python -m bench.soak --variant full --scenario L5 --minutes 30

Each run starts fresh servers on loopback (``python -m signaling --port 0``),
samples the server process before the load (baseline), every few seconds
during it, and after every client has left: RSS, open fds, threads, CPU, and
the ``/metrics`` gauges (connected clients, rooms, peers). The load comes
from another process (``bench/soak_load.py`` for the Socket.IO scenarios,
``bench/soak_peers.py`` for aiortc, ``bench/soak_attack.py`` for the
attacker of L9) that counts sent, delivered, failed-and-reported, silent
losses, duplicates, reorders and delivery latency.

The server's asyncio task count is not visible from outside its process,
so "no task leak" is judged by fds, threads and the room/peer gauges
returning to baseline, and RSS growth.

Prints one JSON object per scenario with the numbers and the named checks
(``"checks": {name: {"ok": bool, ...}}``), writes them to
``bench/results/soak-<variant>-<scenario>.json`` and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procstat import cpu_seconds, rss_kib
from .servers import REPO_DIR, RunningServer, ServerSpec, start

RESULTS = REPO_DIR / "bench" / "results"
SAMPLE_EVERY = 5.0
SETTLE_TIMEOUT = 30.0


# --------------------------------------------------------------- server state
def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def thread_count(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


GAUGES = ("signaling_connected_clients", "signaling_rooms", "signaling_peers")


def gauges(url: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in GAUGES:
            if line.startswith(name + " "):
                found[name.removeprefix("signaling_")] = float(line.split()[1])
    return found


def sample(server: RunningServer) -> dict[str, Any]:
    rss = rss_kib(server.pid)
    return {
        "t": round(time.monotonic(), 1),
        "rss_mb": round(rss / 1024, 1) if rss else None,
        "fds": fd_count(server.pid),
        "threads": thread_count(server.pid),
        "cpu_s": cpu_seconds(server.pid),
        **gauges(server.url),
    }


@dataclass
class Sampler:
    """Samples the servers every few seconds on a thread until stopped."""

    servers: list[RunningServer]
    samples: list[list[dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.samples = [[] for _ in self.servers]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            for index, server in enumerate(self.servers):
                self.samples[index].append(sample(server))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def wait_empty(server: RunningServer) -> dict[str, float]:
    """Wait (bounded) until the server counts no client, room or peer."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last: dict[str, float] = {}
    while time.monotonic() < deadline:
        last = gauges(server.url)
        if last and not any(last.values()):
            return last
        time.sleep(0.5)
    return last


def log_problems(server: RunningServer) -> dict[str, int]:
    text = server.log_path.read_text(errors="replace")
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "errors": len(re.findall(r"\bERROR\b", text)),
        "exceptions_logged": len(re.findall(r"\bException\b|\bexception\b", text)),
    }


# ------------------------------------------------------------------ scenarios
@dataclass
class Plan:
    """One scenario in one variant: generator arguments and server flags."""

    name: str
    what: str
    load: list[str]
    server_flags: list[str] = field(default_factory=list)
    nodes: int = 1
    redis: bool = False
    module: str = "bench.soak_load"
    attacker: list[str] | None = None
    warmup: float = 0.0  # seconds of load before the RSS-growth reference


def plans(variant: str, minutes: float | None) -> dict[str, Plan]:
    full = variant == "full"
    churn_s = (minutes or (60 if full else 1.5)) * 60
    nolimit = ["--rate-limit", "0"]
    return {
        "L1": Plan("L1", "connect storm, raw websocket clients",
                   ["--scenario", "storm", "--clients", "2000" if full else "500",
                    "--rate", "200", "--hold", "300" if full else "20"], nolimit),
        "L2": Plan("L2", "signaling burst: offer/answer + 21 candidates each side, per pair",
                   ["--scenario", "burst", "--rooms", "500" if full else "100", "--rate", "200"],
                   nolimit),
        "L3": Plan("L3", "data-relay steady state, 1 KiB at 20 msg/s per peer",
                   ["--scenario", "pairs", "--clients", "100", "--msg-rate", "20",
                    "--size", "1024", "--duration", "600" if full else "60"], nolimit),
        "L4": Plan("L4", "saturation: 400 peers x 20 msg/s offered, then 100 peers recover",
                   ["--scenario", "pairs", "--clients", "400", "--msg-rate", "20",
                    "--size", "1024", "--duration", "60" if full else "30", "--window", "64",
                    "--recovery", "20", "--recovery-peers", "100"], []),
        "L5": Plan("L5", "churn soak: join/leave every 5-20 s with signals",
                   ["--scenario", "churn", "--clients", "300" if full else "100",
                    "--duration", str(churn_s), "--progress", "60" if full else "20"],
                   nolimit, warmup=300 if full else 30),
        "L6": Plan("L6", "polling-only clients, 5 msg/s each",
                   ["--scenario", "pairs", "--clients", "200", "--msg-rate", "5",
                    "--size", "256", "--duration", "300" if full else "60",
                    "--transports", "polling", "--rate", "50"], nolimit),
        "L7": Plan("L7", "two nodes over redis-server, every pair split across the nodes",
                   ["--scenario", "pairs", "--clients", "400", "--msg-rate", "2.5",
                    "--size", "256", "--duration", "600" if full else "60"],
                   nolimit, nodes=2, redis=True),
        "L8": Plan("L8", "aiortc data channels, 4 pairs, 16 KiB messages each way",
                   ["--pairs", "4", "--mb", "50" if full else "5", "--loss-mb", "5" if full else "1"],
                   module="bench.soak_peers"),
        "L9": Plan("L9", "L3 load plus one attacker (signal flood, 1.1 MB POST, 300 binary frames)",
                   ["--scenario", "pairs", "--clients", "100", "--msg-rate", "20",
                    "--size", "1024", "--duration", "120" if full else "45"], [],
                   attacker=["--duration", "100" if full else "35"]),
    }


def run_plan(plan: Plan, variant: str) -> dict[str, Any]:
    log_dir = RESULTS / f"soak-{variant}-{plan.name}"
    redis = None
    servers: list[RunningServer] = []
    try:
        flags = ["--log-level", "warning", *plan.server_flags]
        if plan.redis:
            from tests.helpers.redis_server import RedisServer  # noqa: PLC0415

            redis = RedisServer()
            redis.start()
            flags += ["--redis-url", redis.url]
        for node in range(plan.nodes):
            cmd = [sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0", *flags]
            servers.append(start(ServerSpec(f"node{node}", f"node{node}", cmd), None, log_dir))
        return _measure(plan, servers, log_dir)
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()


def _measure(plan: Plan, servers: list[RunningServer], log_dir: Path) -> dict[str, Any]:
    main = servers[0]
    time.sleep(1.0)
    baseline = [sample(s) for s in servers]
    sampler = Sampler(servers)
    urls = [arg for s in servers for arg in ("--url", s.url)]
    attacker = None
    if plan.attacker is not None:
        attacker = subprocess.Popen(
            [sys.executable, "-m", "bench.soak_attack", "--url", main.url, *plan.attacker],
            cwd=REPO_DIR, stdout=subprocess.PIPE, text=True)
    gen = subprocess.Popen([sys.executable, "-m", plan.module, *urls, *plan.load],
                           cwd=REPO_DIR, stdout=subprocess.PIPE, text=True)
    assert gen.stdout is not None
    marks: dict[str, Any] = {}
    result: dict[str, Any] = {}
    started = time.monotonic()
    for line in gen.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "mark" in message:
            name = message.pop("mark")
            at = [sample(s) for s in servers]
            if name == "progress":
                print(f"[{plan.name} +{time.monotonic() - started:.0f}s] {message} "
                      f"server {at[0]}", file=sys.stderr, flush=True)
                marks.setdefault("progress", []).append({**message, "server": at[0]})
            else:
                marks[name] = {**message, "server": at}
        elif "result" in message:
            result = message["result"]
    gen.wait()
    attack_result: dict[str, Any] = {}
    if attacker is not None:
        out, _ = attacker.communicate(timeout=120)
        for line in out.splitlines():
            try:
                attack_result = json.loads(line)
            except ValueError:
                pass
    sampler.stop()
    empties = [wait_empty(s) for s in servers]
    time.sleep(2.0)
    after = [sample(s) for s in servers]
    peaks = [{
        "rss_mb": max((x["rss_mb"] or 0) for x in series + [b, a]),
        "fds": max((x["fds"] or 0) for x in series + [b, a]),
        "threads": max((x["threads"] or 0) for x in series + [b, a]),
        "connected_clients": max(x.get("connected_clients", 0) for x in series + [b, a]),
    } for series, b, a in zip(sampler.samples, baseline, after)]
    cpu = [((a["cpu_s"] or 0) - (b["cpu_s"] or 0)) / max(1e-9, a["t"] - b["t"])
           for b, a in zip(baseline, after)]
    report = {
        "scenario": plan.name,
        "what": plan.what,
        "generator_exit": gen.returncode,
        "load": result,
        "server": [{"baseline": b, "peak": p, "after": a, "empty_gauges": e,
                    "avg_cpu_cores": round(c, 2), "log": log_problems(s)}
                   for b, p, a, e, c, s in zip(baseline, peaks, after, empties, cpu, servers)],
        "marks": marks,
        "timeline": sampler.samples[0],
    }
    load_end = marks.get("traffic-end", {}).get("server", [{}])[0].get("t", float("inf"))
    loaded = [x for x in sampler.samples[0]
              if started + plan.warmup <= x["t"] < load_end]
    if plan.warmup and loaded:
        report["rss_after_warmup_mb"] = loaded[0]["rss_mb"]
        report["rss_max_after_warmup_mb"] = max(x["rss_mb"] or 0 for x in loaded)
        report["rss_at_load_end_mb"] = loaded[-1]["rss_mb"]
    if attack_result:
        report["attacker"] = attack_result
    report["checks"] = checks(plan, report)
    (log_dir / "result.json").write_text(json.dumps(report, indent=1))
    return report


def _check(ok: bool, **detail: Any) -> dict[str, Any]:
    return {"ok": bool(ok), **detail}


def checks(plan: Plan, report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    load = report.get("load") or {}
    totals = load.get("totals") or {}
    found: dict[str, dict[str, Any]] = {}
    found["generator finished"] = _check(report["generator_exit"] == 0 and bool(load))
    for index, server in enumerate(report["server"]):
        b, a = server["baseline"], server["after"]
        tag = "" if len(report["server"]) == 1 else f" (node {index})"
        found["fds back to baseline" + tag] = _check(
            a["fds"] is not None and a["fds"] <= b["fds"] + 2, before=b["fds"], after=a["fds"],
            peak=server["peak"]["fds"])
        found["threads back to baseline" + tag] = _check(
            a["threads"] is not None and a["threads"] <= b["threads"] + 1,
            before=b["threads"], after=a["threads"])
        found["no clients/rooms/peers left" + tag] = _check(
            bool(server["empty_gauges"]) and not any(server["empty_gauges"].values()),
            gauges=server["empty_gauges"])
        found["no traceback in server log" + tag] = _check(
            server["log"]["tracebacks"] == 0, **server["log"])
    if plan.name == "L8":
        found["all files sha256-exact and in order"] = _check(
            load.get("ok") is True, transfers=load.get("transfers"))
        return found
    if totals:
        found["0 silent losses"] = _check(totals["silent_lost"] == 0,
                                          silent_lost=totals["silent_lost"])
        found["outcome recorded for every message"] = _check(totals["unacked"] == 0,
                                                             unacked=totals["unacked"])
        found["0 duplicates, 0 reorders"] = _check(
            totals["duplicates"] == 0 and totals["reorders"] == 0,
            duplicates=totals["duplicates"], reorders=totals["reorders"])
    if plan.name == "L1":
        peak = report["server"][0]["peak"]
        found["all connected within 30 s, 0 errors"] = _check(
            load.get("connected") == load.get("clients") and load.get("connect_seconds", 99) <= 30
            and totals.get("connect_errors") == 0,
            connected=load.get("connected"), seconds=load.get("connect_seconds"))
        found["RSS < 400 MB"] = _check(peak["rss_mb"] < 400, peak_rss_mb=peak["rss_mb"])
        base = report["server"][0]["baseline"]["fds"]
        held = report["marks"].get("held", {}).get("server", [{}])[0].get("fds")
        found["fds = clients + const"] = _check(
            held is not None and 0 <= held - base - load.get("clients", 0) <= 20,
            baseline=base, held=held)
    if plan.name in ("L2", "L3", "L6", "L7"):
        found["100 % delivered"] = _check(
            totals.get("failed_reported") == 0 and totals.get("delivered") == totals.get("sent"),
            sent=totals.get("sent"), delivered=totals.get("delivered"))
        p99 = (load.get("steady") or totals).get("p99_ms")
        found["p99 < 100 ms"] = _check(p99 is not None and p99 < 100, p99_ms=p99)
        found["0 unexpected disconnects"] = _check(totals.get("unexpected_disconnects") == 0)
    if plan.name == "L3":
        cpu = report["server"][0]["avg_cpu_cores"]
        found["server CPU < 1 core"] = _check(cpu < 1.0, cores=cpu)
    if plan.name == "L4":
        rec = load.get("recovery") or {}
        found["recovery p99 < 100 ms within 10 s"] = _check(
            rec.get("p99_ms") is not None and rec["p99_ms"] < 100, p99_ms=rec.get("p99_ms"))
        found["server alive"] = _check(report["server"][0]["after"]["rss_mb"] is not None)
    if plan.name == "L5":
        ref = report.get("rss_after_warmup_mb")
        last = report.get("rss_at_load_end_mb")
        found["RSS growth < 10 % after warm-up"] = _check(
            ref is not None and last is not None and last <= ref * 1.10,
            after_warmup_mb=ref, at_load_end_mb=last, max_mb=report.get("rss_max_after_warmup_mb"))
        found["0 unexpected disconnects"] = _check(totals.get("unexpected_disconnects") == 0)
    if plan.name == "L9":
        steady = load.get("steady") or {}
        found["legit p99 < 2x L3 budget (200 ms)"] = _check(
            steady.get("p99_ms") is not None and steady["p99_ms"] < 200,
            p99_ms=steady.get("p99_ms"))
        found["0 legit disconnects"] = _check(totals.get("unexpected_disconnects") == 0)
        found["attacker dropped"] = _check(bool(report.get("attacker", {}).get("dropped")),
                                           attacker=report.get("attacker"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("short", "full"), default="short")
    parser.add_argument("--scenario", default="all", help="L1..L9 or all")
    parser.add_argument("--minutes", type=float, default=None, help="L5 duration")
    args = parser.parse_args(argv)
    table = plans(args.variant, args.minutes)
    names = list(table) if args.scenario == "all" else args.scenario.split(",")
    failed = False
    for name in names:
        plan = table[name]
        print(f"== {name} ({args.variant}): {plan.what}", file=sys.stderr, flush=True)
        report = run_plan(plan, args.variant)
        report.pop("timeline", None) if args.variant == "short" else None
        bad = [n for n, c in report["checks"].items() if not c["ok"]]
        failed = failed or bool(bad)
        print(json.dumps({k: v for k, v in report.items() if k != "timeline"}), flush=True)
        print(f"== {name}: {'FAIL ' + ', '.join(bad) if bad else 'all checks passed'}",
              file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
