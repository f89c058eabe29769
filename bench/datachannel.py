"""Data channels in one run: Python ↔ Python against Chromium ↔ Chromium (issue 18).

    python -m bench.datachannel [--mb 100] [--repeat 3] [--runs 5] [--json PATH]

Starts its own signaling server and one headless Chromium, then, ``--repeat``
times and interleaved (so a busy machine slows every kind alike):

- ``chromium↔chromium``: two RTCPeerConnections in one page, 64 KiB messages
  with the same backpressure as the Python peer (1 MiB high, 256 KiB low);
- ``python↔python emit`` / ``file``: ``bench.peer_procs`` in two processes,
  64 KiB ``emit`` messages or ``send_file`` (SHA-256 confirmed), on the
  ``native`` engine (peer/native) and on ``aiortc`` with the fast path
  (peer/fast_path.py) and, as ``… before``, without (``RTC_PEER_FAST_PATH=0``);
- ``browser→python`` / ``python→browser``: 64 KiB ``emit`` between the
  browser Peer (web/static/rtc-peer.js) and a Python Peer in this process,
  on either engine;

then the ``connect()`` → ``upgrade`` time of a Python Peer on each engine
(median of ``--runs``). ``--only WORD`` keeps the rows whose name holds it. For each transfer: MB/s, the CPU seconds both ends spent per MB
(Chromium: all its processes), and the CPU per 1,160-byte SCTP data chunk
(the most aiortc puts in one datagram), so that a machine shared with other
work can still be compared; ratios are to Chromium ↔ Chromium of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .peer_bench import ROOT, connect_to_upgrade, signaling_server
from .procstat import cpu_seconds

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-features=WebRtcHideLocalIpsWithMdns"]
MESSAGE = 64 * 1024
CHUNK = 1160
"""aiortc's largest DATA chunk payload (SCTP_MAX_PACKET_LENGTH 1189, headers, padding)."""

PAGE_PAIR = """
async ([total]) => {
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const ch = a.createDataChannel('bench');
  const done = new Promise((resolve) => {
    b.ondatachannel = (e) => {
      let n = 0;
      e.channel.binaryType = 'arraybuffer';
      e.channel.onmessage = (m) => { n += m.data.byteLength; if (n >= total) resolve(); };
    };
  });
  const opened = new Promise((resolve) => { ch.onopen = resolve; });
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  await opened;
  const block = new Uint8Array(65536); crypto.getRandomValues(block);
  ch.bufferedAmountLowThreshold = 262144;
  const started = performance.now();
  for (let sent = 0; sent < total; sent += block.byteLength) {
    if (ch.bufferedAmount > 1048576) await new Promise((r) => { ch.onbufferedamountlow = r; });
    ch.send(block);
  }
  await done;
  const ms = performance.now() - started;
  a.close(); b.close();
  return ms;
}
"""

BROWSER_PEER = """
async ([room]) => {
  const { Peer } = await import('/static/rtc-peer.js');
  const peer = new Peer(location.origin, room, { meta: { name: 'bench-browser' } });
  window.received = 0;
  peer.on('blob', (from, data) => {
    window.received += data.byteLength;
    if (window.received >= window.expect) peer.emit('bench-done', null, { to: from });
  });
  await peer.connect();
  window.rtcPeer = peer;
  return peer.id;
}
"""

BROWSER_SEND = """
async ([to, total]) => {
  const block = new Uint8Array(65536); crypto.getRandomValues(block);
  for (let sent = 0; sent < total; sent += block.byteLength) await window.rtcPeer.emit('blob', block, { to });
}
"""


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def descendants_cpu(root: int) -> float:
    """CPU seconds of every live process below ``root`` (Chromium and its helpers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    return sum(cpu_seconds(pid) or 0.0 for pid in below)


def result(size: int, seconds: float, cpu: float) -> dict[str, float]:
    return {"mb_s": size / seconds / 1e6, "cpu_s_per_mb": cpu / (size / 1e6),
            "cpu_us_per_chunk": cpu / (size / CHUNK) * 1e6}


async def chromium_pair(page: Any, mb: int) -> dict[str, float]:
    total = mb * 1000 * 1000
    cpu0 = descendants_cpu(os.getpid())
    ms = await page.evaluate(PAGE_PAIR, [total])
    return result(total, ms / 1000, descendants_cpu(os.getpid()) - cpu0)


async def python_pair(
    url: str, mode: str, mb: int, source: Path, fast: bool, engine: str = "aiortc"
) -> dict[str, float]:
    room = f"dc-{mode}-{fast}-{engine}-{time.monotonic_ns()}"
    env = dict(os.environ, RTC_PEER_FAST_PATH="1" if fast else "0", RTC_PEER_ENGINE=engine)
    with tempfile.TemporaryDirectory() as out:
        common = ["--server", url, "--room", room, "--mode", mode, "--mb", str(mb)]
        recv = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.peer_procs", "recv", *common, "--output", out,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
        send = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.peer_procs", "send", *common, "--file", str(source),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
        sent, got = await asyncio.wait_for(
            asyncio.gather(send.communicate(), recv.communicate()), 900)
    if send.returncode or recv.returncode:
        raise RuntimeError(f"python {mode} transfer failed ({send.returncode}, {recv.returncode})")
    s, r = json.loads(sent[0].splitlines()[-1]), json.loads(got[0].splitlines()[-1])
    return result(s["bytes"], s["seconds"], s["cpu_s"] + r["cpu_s"])


@contextlib.contextmanager
def engine_env(engine: str) -> Iterator[None]:
    """RTC_PEER_ENGINE for the Peers made in this process meanwhile (read when one is made)."""
    before = os.environ.get("RTC_PEER_ENGINE")
    os.environ["RTC_PEER_ENGINE"] = engine
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RTC_PEER_ENGINE", None)
        else:
            os.environ["RTC_PEER_ENGINE"] = before


async def browser_python(
    page: Any, url: str, mb: int, to_browser: bool, engine: str
) -> dict[str, float]:
    from peer import Peer

    total = -(-mb * 1000 * 1000 // MESSAGE) * MESSAGE
    room = f"dc-browser-{to_browser}-{time.monotonic_ns()}"
    browser_id = await page.evaluate(BROWSER_PEER, [room])
    await page.evaluate("(n) => { window.expect = n; }", total)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    received = 0

    def on_blob(_sender: str, data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received >= total and not done.done():
            done.set_result(None)

    with engine_env(engine):
        python_peer = Peer(url, room)
    async with python_peer as python:
        python.on("blob", on_blob)
        python.on("bench-done", lambda _s, _d: None if done.done() else done.set_result(None))
        await page.wait_for_function(
            "(id) => window.rtcPeer.transport(id) === 'webrtc'", arg=python.id, timeout=30_000)
        while python.transport(browser_id) != "webrtc":
            await asyncio.sleep(0.02)
        cpu0, browser0, started = self_cpu(), descendants_cpu(os.getpid()), time.perf_counter()
        if to_browser:
            block = os.urandom(MESSAGE)
            for _ in range(total // MESSAGE):
                await python.emit("blob", block, to=browser_id)
        else:
            sending = asyncio.ensure_future(page.evaluate(BROWSER_SEND, [python.id, total]))
        await asyncio.wait_for(done, 900)
        seconds = time.perf_counter() - started
        cpu = self_cpu() - cpu0 + descendants_cpu(os.getpid()) - browser0
        if not to_browser:
            await sending
    await page.evaluate("() => window.rtcPeer.close()")
    return result(total, seconds, cpu)


def _wanted(name: str, only: list[str]) -> bool:
    return name == "chromium↔chromium" or not only or any(part in name for part in only)


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = runs[0].keys()
    return {k: statistics.median(r[k] for r in runs) for k in keys} | {
        "mb_s_all": [round(r["mb_s"], 1) for r in runs]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    samples: dict[str, list[dict[str, float]]] = defaultdict(list)
    failures: dict[str, int] = {}
    out: dict[str, Any] = {"mb": args.mb, "repeat": args.repeat, "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "bench.bin"
        source.write_bytes(os.urandom(args.mb * 1000 * 1000))
        async with signaling_server() as url, async_playwright() as pw:
            chromium = await pw.chromium.launch(executable_path=str(CHROMIUM),
                                                args=CHROMIUM_ARGS, headless=True)
            try:
                page = await (await chromium.new_context()).new_page()
                await page.goto(f"{url}/")
                for n in range(args.repeat):
                    steps = [
                        ("chromium↔chromium", lambda: chromium_pair(page, args.mb)),
                        ("python↔python emit native",
                         lambda: python_pair(url, "emit", args.mb, source, True, "native")),
                        ("python↔python file native",
                         lambda: python_pair(url, "file", args.mb, source, True, "native")),
                        ("python→browser emit native",
                         lambda: browser_python(page, url, args.mb, True, "native")),
                        ("browser→python emit native",
                         lambda: browser_python(page, url, args.mb, False, "native")),
                        ("python↔python emit aiortc",
                         lambda: python_pair(url, "emit", args.mb, source, True)),
                        ("python↔python file aiortc",
                         lambda: python_pair(url, "file", args.mb, source, True)),
                        ("python→browser emit aiortc",
                         lambda: browser_python(page, url, args.mb, True, "aiortc")),
                        ("browser→python emit aiortc",
                         lambda: browser_python(page, url, args.mb, False, "aiortc")),
                        ("python↔python emit aiortc before",
                         lambda: python_pair(url, "emit", args.mb, source, False)),
                        ("python↔python file aiortc before",
                         lambda: python_pair(url, "file", args.mb, source, False)),
                    ]
                    steps = [(name, step) for name, step in steps if _wanted(name, args.only)]
                    for name, step in steps:
                        try:
                            measured = await step()
                        except (RuntimeError, TimeoutError) as exc:  # reported, not fatal
                            failures[name] = failures.get(name, 0) + 1
                            print(f"[{n + 1}/{args.repeat}] {name:<28} FAILED: {exc}", flush=True)
                            continue
                        samples[name].append(measured)
                        print(f"[{n + 1}/{args.repeat}] {name:<28} {measured['mb_s']:6.1f} MB/s "
                              f"{measured['cpu_s_per_mb'] * 1000:6.1f} ms CPU/MB", flush=True)
            finally:
                await chromium.close()
            times = {}
            for engine in ("native", "aiortc"):
                with engine_env(engine):
                    times[engine] = await connect_to_upgrade(url, args.runs)
    out["loadavg_end"] = os.getloadavg()[0]
    out["results"] = {name: summary(runs) for name, runs in samples.items()}
    out["failures"] = failures
    out["connect_upgrade_ms"] = {
        engine: {"median": statistics.median(t) * 1000, "all": [round(x * 1000, 1) for x in t]}
        for engine, t in times.items()}
    return out


def table(out: dict[str, Any]) -> str:
    base = out["results"]["chromium↔chromium"]["mb_s"]
    header = ("| path | MB/s (median) | runs | × Chromium↔Chromium | CPU ms/MB (both ends) "
              "| CPU µs per 1,160 B chunk |")
    lines = [header, "|---|---|---|---|---|---|"]
    for name, r in out["results"].items():
        runs = ", ".join(f"{v:.1f}" for v in r["mb_s_all"])
        lines.append(f"| {name} | {r['mb_s']:.1f} | {runs} | {r['mb_s'] / base:.2f} "
                     f"| {r['cpu_s_per_mb'] * 1000:.1f} | {r['cpu_us_per_chunk']:.0f} |")
    lines.append("")
    for engine, c in out["connect_upgrade_ms"].items():
        lines.append(f"`connect()` → `upgrade` ({engine}): median {c['median']:.0f} ms "
                     f"(n={len(c['all'])}, min {min(c['all']):.0f}, max {max(c['all']):.0f}).")
    lines.append(f"Load average {out['loadavg_start']:.1f} at the start, "
                 f"{out['loadavg_end']:.1f} at the end.")
    if out["failures"]:
        lines.append(f"Failed runs: {out['failures']}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="connect→upgrade samples")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", action="append", default=[],
                        help="run only the rows whose name contains this (repeatable)")
    args = parser.parse_args()
    import uvloop

    out = uvloop.run(run(args))
    print(table(out))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
