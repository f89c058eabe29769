"""Optional py-spy sampling of our server while a scenario runs (``--profile``).

py-spy writes collapsed stacks ("raw" format: ``frame;frame;frame count`` per
line); this module also boils them down to the functions with the most self
and inclusive time, which is what docs/benchmarks.md needs to say where the
time goes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from .servers import pinned


class Profiler:
    """A py-spy recorder attached to one process until ``stop``."""

    def __init__(self, pid: int, output: Path, core: int | None, rate: int = 250) -> None:
        self.output = output
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
               "--output", str(output)]
        self.proc = subprocess.Popen(pinned(cmd, core), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> Path | None:
        """Stop sampling; returns the stacks file if py-spy wrote one."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.output if self.output.exists() else None


def _frame_name(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (path/file.py)``: group by function."""
    head, _, rest = frame.partition(" (")
    where = rest.rstrip(")").rsplit(":", 1)[0]
    return f"{head} ({where})" if where else head


def _package(frame: str) -> str:
    """The top-level package (or stdlib module folder) a frame's file is in."""
    where = frame.partition(" (")[2].rstrip(")")
    return where.split("/", 1)[0] if "/" in where else where.rsplit(".", 1)[0] or "?"


def summarize(stacks: Path, top: int = 25) -> str:
    """A text table of the packages and functions with the most self and inclusive samples."""
    self_time: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text(errors="replace").splitlines():
        path, _, count_text = line.rpartition(" ")
        if not path or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in path.split(";")]
        self_time[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return "no samples\n"
    out = [f"{total} samples\n", "self %  package"]
    out += [f"{100 * n / total:6.1f}  {name}" for name, n in by_package.most_common(12)]
    out += ["", "self %  function"]
    out += [f"{100 * n / total:6.1f}  {name}" for name, n in self_time.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / total:6.1f}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out) + "\n"
