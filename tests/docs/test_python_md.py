"""Every ``python`` snippet of docs/python.md runs as written (the server address aside)."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

from tests.helpers.server import ROOT, RunningServer

SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)
SNIPPETS = SNIPPET.findall((ROOT / "docs" / "python.md").read_text())
EXPECTED = [
    re.compile(r"^\S{6}: hello$"),
    re.compile(r"^report\.txt: 18 bytes at inbox/report\.txt$"),
    re.compile(r"^sum: 6\nrefused: no-handler\npeer-left is the library's$"),
    re.compile(r"^bob is away\npath: webrtc (host|srflx|prflx)\ndatagram: \['x', 'y'\]$"),
    re.compile(r"^only we can read this \| undecryptable: 0$"),
    re.compile(r"^receiver cancelled: the receiver declined the file$"),
    re.compile(r"^joined as \S{16,}$"),
]


def test_the_page_has_the_snippets_this_test_expects() -> None:
    assert len(SNIPPETS) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(EXPECTED)))
async def test_snippet_runs(server: RunningServer, index: int) -> None:
    code = SNIPPETS[index].replace("http://127.0.0.1:8080", server.url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:  # a hung snippet must not outlive its test (nor keep its pipes open)
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == 0, err.decode()
    assert EXPECTED[index].match(out.decode().strip()), out.decode() + err.decode()
    assert err == b""  # quiet: no library log, no warning
