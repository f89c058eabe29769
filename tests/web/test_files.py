"""The file transfer demo moves 20 MB page to page, SHA-256 checked."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

from tests.helpers.server import RunningServer
from tests.web.pages import open_demo, screenshot, wait_peers

SIZE = 8 * 1024 * 1024  # many 64 KiB chunks and the page-to-page SHA-256; more only costs the run time


async def test_eight_megabytes_page_to_page(
    server: RunningServer, browser: Any, artifacts: Path
) -> None:
    data = random.Random(5).randbytes(SIZE)
    digest = hashlib.sha256(data).hexdigest()
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    sender, receiver = [
        await open_demo(context, f"{server.url}/files.html?room=files-test&name={name}", errors=errors)
        for name in ("Ada", "Bob")
    ]
    await wait_peers(sender, 1, "webrtc")
    await sender.set_input_files(
        "#file-input",
        files=[{"name": "eight.bin", "mimeType": "application/octet-stream", "buffer": data}],
    )
    # The receiver shows the SHA-256 it computed, the sender the receiver's confirmation.
    await receiver.wait_for_selector(f".transfer.done [data-sha256='{digest}']", timeout=120_000)
    await sender.wait_for_selector(f".transfer.done [data-sha256='{digest}']", timeout=20_000)
    assert digest in await receiver.inner_text(".transfer.done .sha")
    # What the download link holds is the same file.
    got = await receiver.evaluate(
        """async () => {
          const a = document.querySelector('.transfer.done a[download]');
          const buf = await (await fetch(a.href)).arrayBuffer();
          const hash = await crypto.subtle.digest('SHA-256', buf);
          return [a.download, buf.byteLength, [...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join('')];
        }"""
    )
    assert got == ["eight.bin", SIZE, digest]
    await screenshot(receiver, artifacts, "files-receiver")
    await screenshot(sender, artifacts, "files-sender")
    await context.close()
    assert errors == []
