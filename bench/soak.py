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

from signaling.settings import Settings

from .procstat import cpu_seconds, loadavg, rss_kib
from .servers import REPO_DIR, RunningServer, ServerSpec, start

RESULTS = REPO_DIR / "bench" / "results"
SAMPLE_EVERY = 5.0
_DEFAULTS = Settings()
SETTLE_TIMEOUT = _DEFAULTS.ping_interval + _DEFAULTS.ping_timeout + _DEFAULTS.resume_grace + 10.0
"""How long the gauges may take to reach 0 once the load has ended: a client
gone without a goodbye is noticed within the ping interval and timeout, and
its peer is kept for the resume grace (70 s with the server's defaults; bug 6
in docs/reliability.md was a 30 s wait that this path outlasted)."""


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
        "loadavg": loadavg(),
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


def wait_empty(server: RunningServer) -> tuple[dict[str, float], float]:
    """Wait (bounded) until the server counts no client, room or peer; also the seconds it took."""
    start = time.monotonic()
    deadline = start + SETTLE_TIMEOUT
    last: dict[str, float] = {}
    while time.monotonic() < deadline:
        last = gauges(server.url)
        if last and not any(last.values()):
            break
        time.sleep(0.5)
    return last, round(time.monotonic() - start, 1)


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
    attack_phase: int = 0  # the attacker starts with this phase (0: the first)
    phases: list[tuple[str, list[str]]] = field(default_factory=list)  # run after ``load``
    warmup: float = 0.0  # seconds of load before the RSS-growth reference
    procs: int = 1  # generator processes sharing the clients (bench.soak_load only)


def plans(variant: str, minutes: float | None) -> dict[str, Plan]:
    full = variant == "full"
    churn_s = (minutes or (60 if full else 2)) * 60
    nolimit = ["--rate-limit", "0", "--rate-limit-bytes", "0"]
    return {
        "L1": Plan("L1", "connect storm, raw websocket clients",
                   ["--scenario", "storm", "--clients", "2000" if full else "500",
                    "--rate", "200", "--hold", "300" if full else "20"], nolimit),
        "L2": Plan("L2", "signaling burst: offer/answer + 21 candidates each side, per pair",
                   ["--scenario", "burst", "--rooms", "500" if full else "100", "--rate", "200",
                    "--spread", "20" if full else "5"],
                   nolimit, procs=2),
        "L3": Plan("L3", "data-relay steady state, 2,000 relays/s of 1 KiB over 50 pairs (Node loadgen)",
                   ["--scenario", "latency", "--clients", "100", "--rate", "2000",
                    "--duration", "600" if full else "50", "--warmup", "5",
                    "--pad", "1024"], nolimit,
                   module="node"),
        "L4": Plan("L4", "saturation: 400 clients offering 8,000 relays/s, then L3 load recovers",
                   ["--scenario", "latency", "--clients", "400", "--rate", "8000",
                    "--duration", "60" if full else "30", "--warmup", "2", "--drain", "90",
                    "--pad", "1024"], [],
                   module="node",
                   phases=[("recovery", ["--scenario", "latency", "--clients", "100",
                                         "--rate", "2000", "--duration", "10",
                                         "--warmup", "10", "--pad", "1024"])]),
        "L5": Plan("L5", "churn soak: join/leave every 5-20 s with signals",
                   ["--scenario", "churn", "--clients", "300" if full else "100",
                    "--duration", str(churn_s), "--progress", "60" if full else "20"],
                   nolimit, warmup=300 if full else 60),
        "L6": Plan("L6", "polling-only clients, 5 msg/s each",
                   ["--scenario", "pairs", "--clients", "200", "--msg-rate", "5",
                    "--size", "256", "--duration", "300" if full else "60",
                    "--transports", "polling", "--rate", "50"], nolimit, procs=4),
        "L7": Plan("L7", "two nodes over redis-server, every pair split across the nodes",
                   ["--scenario", "pairs", "--clients", "400", "--msg-rate", "2.5",
                    "--size", "256", "--duration", "600" if full else "60"],
                   nolimit, nodes=2, redis=True, procs=4),
        "L8": Plan("L8", "aiortc data channels, 4 pairs, 16 KiB messages each way",
                   ["--pairs", "4", "--mb", "50" if full else "5", "--loss-mb", "5" if full else "1"],
                   module="bench.soak_peers"),
        "L9": Plan("L9", "L3 load, then the same with one attacker (flood, oversized POST, "
                   "attachment bomb)",
                   ["--scenario", "latency", "--clients", "100", "--rate", "2000",
                    "--duration", "60" if full else "20", "--warmup", "5", "--pad", "1024"], [],
                   module="node", attack_phase=1,
                   phases=[("attack", ["--scenario", "latency", "--clients", "100",
                                       "--rate", "2000", "--duration", "110" if full else "35",
                                       "--warmup", "5", "--pad", "1024"])],
                   attacker=["--duration", "110" if full else "35"]),
    }


def run_plan(plan: Plan, variant: str) -> dict[str, Any]:
    log_dir = RESULTS / f"soak-{variant}-{plan.name}"
    redis = None
    servers: list[RunningServer] = []
    try:
        flags = ["--log-level", "warning", *plan.server_flags]
        if plan.redis:
            from tests.helpers.redis_server import RedisServer

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


_result_files = iter(range(10**6))


def _command(module: str, urls: list[str], args: list[str]) -> list[str]:
    if module == "node":  # bench/loadgen.mjs (issue 7's load generator), websocket only
        from .servers import ensure_npm_deps

        ensure_npm_deps()
        return ["node", str(REPO_DIR / "bench" / "loadgen.mjs"), "--url", urls[1], *args]
    if module == "bench.soak_load":
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"generator-{os.getpid()}-{next(_result_files)}.json"
        args = [*args, "--result-file", str(path)]
    return [sys.executable, "-m", module, *urls, *args]


def node_totals(result: dict[str, Any]) -> dict[str, Any]:
    """The loadgen's ``latency`` result in this harness's terms."""
    c = result.get("correctness") or {}
    lat = result.get("latency") or {}
    unacked = c.get("sent", 0) - c.get("acked_ok", 0) - c.get("ack_errors", 0)
    return {
        "sent": c.get("sent"), "expected": c.get("ack_delivered"), "delivered": c.get("unique"),
        "failed_reported": c.get("ack_errors"), "fail_codes": c.get("error_codes"),
        "silent_lost": c.get("lost"), "unacked": unacked, "duplicates": c.get("duplicates"),
        "reorders": c.get("reorders"), "misrouted": c.get("corrupt"),
        "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"), "max_ms": lat.get("max_ms"),
        "achieved_rate": round(result.get("achieved_rate") or 0, 1),
        "target_rate": result.get("target_rate"), "unexpected_disconnects": 0,
        "loadgen_cpu": round(result.get("loadgen_cpu_util") or 0, 2),
    }


def _run_generator(plan: Plan, command: list[str], servers: list[RunningServer],
                   marks: dict[str, Any], started: float) -> dict[str, Any]:
    gen = subprocess.Popen(command, cwd=REPO_DIR, stdout=subprocess.PIPE, text=True)
    assert gen.stdout is not None
    result: dict[str, Any] = {}
    for line in gen.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            print(f"[{plan.name}] generator line not JSON ({len(line)} chars): "
                  f"{line[:60]!r}...{line[-60:]!r}", file=sys.stderr)
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
        elif "result_file" in message:
            written = Path(message["result_file"])
            result = json.loads(written.read_text())
            written.unlink()
        elif "error" in message:
            result = {"error": message["error"]}
    result["_exit"] = gen.wait()
    if plan.module == "node" and "correctness" in result:
        result["totals"] = node_totals(result)
    return result


SUMMED = ("sent", "expected", "delivered", "failed_reported", "ack_timeouts", "silent_lost",
          "unacked", "duplicates", "reorders", "connect_errors", "unexpected_disconnects",
          "joins", "leaves", "not_sent_backpressure", "misrouted")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from the results of several generator processes."""
    if len(results) == 1:
        results[0].pop("latency_samples_ms", None)
        return results[0]
    merged = {k: v for k, v in results[0].items() if not isinstance(v, dict)}
    merged["_exit"] = max(r.get("_exit", 1) for r in results)
    merged["processes"] = len(results)
    for key in ("clients", "rooms", "cycles"):
        if all(key in r for r in results):
            merged[key] = sum(r[key] for r in results)
    samples = [v for r in results for v in r.pop("latency_samples_ms", [])]
    totals: dict[str, Any] = {k: sum((r.get("totals") or {}).get(k) or 0 for r in results)
                              for k in SUMMED}
    codes: dict[str, int] = {}
    for r in results:
        for code, n in ((r.get("totals") or {}).get("fail_codes") or {}).items():
            codes[code] = codes.get(code, 0) + n
    totals["fail_codes"] = codes
    totals.update(p50_ms=_pct(samples, 50), p99_ms=_pct(samples, 99), max_ms=_pct(samples, 100))
    merged["totals"] = totals
    merged["per_process_p99_ms"] = [(r.get("totals") or {}).get("p99_ms") for r in results]
    return merged


def split_args(args: list[str], procs: int, part: int) -> list[str]:
    """``args`` for generator ``part`` of ``procs``: its share of clients and rooms."""
    out = list(args)
    for flag in ("--clients", "--rooms"):
        if flag in out:
            i = out.index(flag) + 1
            total = int(out[i])
            share = total // procs + (1 if part < total % procs else 0)
            if flag == "--clients" and share % 2:
                share += 1 if part % 2 == 0 else -1
            out[i] = str(share)
    return out


def _run_generators(plan: Plan, args: list[str], urls: list[str],
                    servers: list[RunningServer], marks: dict[str, Any],
                    started: float) -> dict[str, Any]:
    procs = plan.procs if plan.module == "bench.soak_load" else 1
    if procs == 1:
        return merge([_run_generator(plan, _command(plan.module, urls, args), servers, marks,
                                     started)])
    results: list[dict[str, Any]] = [{} for _ in range(procs)]

    def run(part: int) -> None:
        own: dict[str, Any] = {} if part else marks
        results[part] = _run_generator(plan, _command(plan.module, urls,
                                                      split_args(args, procs, part)),
                                       servers, own, started)

    threads = [threading.Thread(target=run, args=(part,)) for part in range(procs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return merge(results)


def _measure(plan: Plan, servers: list[RunningServer], log_dir: Path) -> dict[str, Any]:
    main = servers[0]
    time.sleep(1.0)
    baseline = [sample(s) for s in servers]
    sampler = Sampler(servers)
    urls = [arg for s in servers for arg in ("--url", s.url)]
    marks: dict[str, Any] = {}
    started = time.monotonic()
    attacker = None
    result: dict[str, Any] = {}
    phases: dict[str, Any] = {}
    for index, (phase, args) in enumerate([("load", plan.load), *plan.phases]):
        if plan.attacker is not None and index == plan.attack_phase:
            attacker = subprocess.Popen(
                [sys.executable, "-m", "bench.soak_attack", "--url", main.url, *plan.attacker],
                cwd=REPO_DIR, stdout=subprocess.PIPE, text=True)
        marks[f"{phase}-start"] = {"server": [sample(s) for s in servers]}
        outcome = _run_generators(plan, args, urls, servers, marks, started)
        if index == 0:
            result = outcome
        else:
            phases[phase] = outcome
    gen_exit = max(r.get("_exit", 1) for r in [result, *phases.values()])
    if phases:
        result["phases"] = phases
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
        "generator_exit": gen_exit,
        "load": result,
        "server": [{"baseline": b, "peak": p, "after": a, "empty_gauges": e, "empty_after_s": w,
                    "avg_cpu_cores": round(c, 2), "log": log_problems(s)}
                   for b, p, a, (e, w), c, s in zip(baseline, peaks, after, empties, cpu, servers)],
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
        # With Redis the connection pool stays at its high-water mark (at most
        # POOL_CONNECTIONS = 64 in signaling/backends/redis.py): bounded, not a leak.
        slack = 2 + (64 if plan.redis else 0)
        found["fds back to baseline" + tag] = _check(
            a["fds"] is not None and a["fds"] <= b["fds"] + slack, before=b["fds"], after=a["fds"],
            peak=server["peak"]["fds"], slack=slack)
        found["threads back to baseline" + tag] = _check(
            a["threads"] is not None and a["threads"] <= b["threads"] + 1,
            before=b["threads"], after=a["threads"])
        found["no clients/rooms/peers left" + tag] = _check(
            bool(server["empty_gauges"]) and not any(server["empty_gauges"].values()),
            gauges=server["empty_gauges"], seconds=server["empty_after_s"])
        found["no traceback in server log" + tag] = _check(
            server["log"]["tracebacks"] == 0, **server["log"])
    if plan.name == "L8":
        found["all files sha256-exact and in order"] = _check(
            load.get("ok") is True, transfers=load.get("transfers"))
        return found
    for phase, outcome in [("", load), *[(f" ({k})", v) for k, v in
                                        (load.get("phases") or {}).items()]]:
        t = outcome.get("totals") or {}
        if not t:
            continue
        found["0 silent losses" + phase] = _check(t["silent_lost"] == 0,
                                                  silent_lost=t["silent_lost"])
        found["outcome recorded for every message" + phase] = _check(t["unacked"] == 0,
                                                                     unacked=t["unacked"])
        if "misrouted" in t:
            found["nobody let in: 0 messages from another room or with a forged from" + phase] = (
                _check(t["misrouted"] == 0, misrouted=t["misrouted"]))
        found["0 duplicates, 0 reorders" + phase] = _check(
            t["duplicates"] == 0 and t["reorders"] == 0,
            duplicates=t["duplicates"], reorders=t["reorders"])
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
        rec = ((load.get("phases") or {}).get("recovery") or {}).get("totals") or {}
        found["recovery: L3 load, p99 < 100 ms from 10 s after the overload"] = _check(
            rec.get("p99_ms") is not None and rec["p99_ms"] < 100
            and rec.get("failed_reported") == 0, p99_ms=rec.get("p99_ms"),
            failed=rec.get("failed_reported"))
        found["server alive, no traceback"] = _check(
            report["server"][0]["after"]["rss_mb"] is not None
            and report["server"][0]["log"]["tracebacks"] == 0)
    if plan.name == "L5":
        ref = report.get("rss_after_warmup_mb")
        last = report.get("rss_at_load_end_mb")
        found["RSS growth < 10 % after warm-up"] = _check(
            ref is not None and last is not None and last <= ref * 1.10,
            after_warmup_mb=ref, at_load_end_mb=last, max_mb=report.get("rss_max_after_warmup_mb"))
        found["0 unexpected disconnects"] = _check(totals.get("unexpected_disconnects") == 0)
    if plan.name == "L9":
        attack = ((load.get("phases") or {}).get("attack") or {}).get("totals") or {}
        base = totals.get("p99_ms")
        p99 = attack.get("p99_ms")
        found["legit p99 under attack < 2x without (floor 20 ms)"] = _check(
            p99 is not None and base is not None and p99 < 2 * max(base, 20.0),
            without=base, under_attack=p99)
        found["0 legit failures or disconnects"] = _check(
            attack.get("failed_reported") == 0 and totals.get("failed_reported") == 0,
            failed=attack.get("failed_reported"))
        found["attacker dropped every time"] = _check(
            bool(report.get("attacker", {}).get("dropped")),
            rounds=report.get("attacker", {}).get("rounds"),
            failures=report.get("attacker", {}).get("failures"))
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
