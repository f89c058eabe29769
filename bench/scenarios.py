"""The benchmark scenarios: load generator arguments and the metrics they yield."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["higher", "lower", "info"]


@dataclass(frozen=True)
class Metric:
    """One number a scenario reports; ``better`` says which way is good."""

    key: str
    label: str
    unit: str
    better: Better


@dataclass(frozen=True)
class Scenario:
    """A named load: which loadgen scenario to run with which options."""

    name: str
    kind: str
    title: str
    args: dict[str, float | int | str]
    metrics: tuple[Metric, ...]


_SERVER_CPU = Metric("server_cpu_util", "server CPU", "cores", "info")
_LOADGEN_CPU = Metric("loadgen_cpu_util", "load generator CPU", "cores", "info")
_OTHER_CPU = Metric("other_cpu", "CPU of other processes", "cores", "info")

_THROUGHPUT = (
    Metric("msgs_per_s", "relayed msg/s", "msg/s", "higher"),
    Metric("msgs_per_cpu_s", "msg per server CPU-second", "msg/CPU-s", "higher"),
    _SERVER_CPU,
    _LOADGEN_CPU,
    _OTHER_CPU,
)
_LATENCY = (
    Metric("p50_ms", "delivery p50", "ms", "lower"),
    Metric("p99_ms", "delivery p99", "ms", "lower"),
    Metric("achieved_rate", "achieved rate", "msg/s", "info"),
    _SERVER_CPU,
    _LOADGEN_CPU,
    _OTHER_CPU,
)
_IDLE = (
    Metric("kib_per_conn", "RSS per idle connection", "KiB", "lower"),
    Metric("rss_base_mib", "RSS with few connections", "MiB", "info"),
)
_BULK = (
    Metric("mb_per_s", "16 KiB binary relay", "MB/s", "higher"),
    Metric("mb_per_cpu_s", "MB per server CPU-second", "MB/CPU-s", "higher"),
    _SERVER_CPU,
    _LOADGEN_CPU,
    _OTHER_CPU,
)
_JOIN = (
    Metric("join_p50_ms", "join ack p50", "ms", "lower"),
    Metric("join_p99_ms", "join ack p99", "ms", "lower"),
    Metric("joins_per_s", "joins acknowledged per second", "joins/s", "higher"),
    Metric("joins_per_cpu_s", "joins per server CPU-second", "joins/CPU-s", "higher"),
    _SERVER_CPU,
)


def all_scenarios(quick: bool) -> list[Scenario]:
    """Every scenario, with shorter runs and fewer connections when ``quick``."""
    timing: dict[str, float | int | str] = (
        {"duration": 1.0, "warmup": 0.3} if quick else {"duration": 5, "warmup": 1}
    )
    idle_counts = [2000] if quick else [2000, 5000]
    pairs = {"clients": 200}
    found = [
        Scenario("windowed", "windowed", "Windowed relay throughput (200 clients, 100 rooms "
                 "of two, window 16)", {**pairs, "window": 16, **timing}, _THROUGHPUT),
        Scenario("ackpaced", "ackpaced", "Ack-paced relay throughput (200 clients, window 1)",
                 {**pairs, **timing}, _THROUGHPUT),
    ]
    found.append(Scenario("polling", "windowed", "Windowed relay throughput over HTTP long-polling "
                          "(100 clients that never upgrade, window 16)",
                          {"clients": 100, "window": 16, "transport": "polling", **timing},
                          _THROUGHPUT))
    if not quick:
        found.append(Scenario("signal", "signal", "Windowed `signal` throughput (200 clients, "
                              "window 16)", {**pairs, "window": 16, **timing}, _THROUGHPUT))
    for rate in (1000, 5000):
        found.append(Scenario(f"latency-{rate}", "latency",
                              f"Relay latency at {rate:,} msg/s (200 clients)",
                              {**pairs, "rate": rate, **timing}, _LATENCY))
    for count in idle_counts:
        found.append(Scenario(f"idle-{count}", "idle", f"{count:,} idle connections",
                              {"connections": count, "base": 100}, _IDLE))
    found.append(Scenario("bulk", "bulk", "Bulk binary relay (16 KiB, 20 clients, window 8)",
                          {"clients": 20, "window": 8, "size": 16384, **timing}, _BULK))
    found.append(Scenario("joinstorm", "joinstorm", "Join storm (1,000 peers into 500 rooms)",
                          {"connections": 1000}, _JOIN))
    return found


def metrics_from(scenario: Scenario, result: dict[str, Any],
                 samples: dict[str, float]) -> dict[str, float | None]:
    """Turn one loadgen result plus the driver's /proc samples into metric values."""
    cpu = samples.get("server_cpu_util")
    gen = result.get("loadgen_cpu_util")
    busy = samples.get("machine_busy_cores")
    out: dict[str, float | None] = {"server_cpu_util": cpu, "loadgen_cpu_util": gen}
    if busy is not None and cpu is not None and gen is not None:
        # What else ran on the machine meanwhile: a sign of a noisy run.
        out["other_cpu"] = max(0.0, busy - cpu - gen)
    kind = scenario.kind
    if kind in ("windowed", "ackpaced", "signal"):
        out["msgs_per_s"] = result["msgs_per_s"]
        out["msgs_per_cpu_s"] = result["msgs_per_s"] / cpu if cpu else None
    elif kind == "latency":
        out["p50_ms"] = result["latency"]["p50_ms"]
        out["p99_ms"] = result["latency"]["p99_ms"]
        out["achieved_rate"] = result["achieved_rate"]
    elif kind == "idle":
        base, ready = samples.get("rss_base_kib"), samples.get("rss_ready_kib")
        added = result["connections"] - result["base"]
        out["kib_per_conn"] = (ready - base) / added if base and ready and added else None
        out["rss_base_mib"] = base / 1024 if base else None
    elif kind == "bulk":
        out["mb_per_s"] = result["mb_per_s"]
        out["mb_per_cpu_s"] = result["mb_per_s"] / cpu if cpu else None
    elif kind == "joinstorm":
        out["join_p50_ms"] = result["join_latency"]["p50_ms"]
        out["join_p99_ms"] = result["join_latency"]["p99_ms"]
        out["joins_per_s"] = result["joins_per_s"]
        out["joins_per_cpu_s"] = result["joins_per_s"] / cpu if cpu else None
    return out
