"""Media measurements (issue 14), not tests: Python <-> Chromium on loopback, optionally via coturn.

    python -m bench.media_bench [--seconds 30] [--runs 3] [--turn]

- fps: Chromium receiving a Python peer's 640x480 30 fps synthetic track
  (a moving gradient, so VP8 has real work), decoded frames per second over
  ``--seconds``, and the Python sender's CPU over the same window (the bench
  process sends one stream and does little else);
- connect() to the first decoded frame, Python -> Chromium (the browser
  Peer's connect() to its video element's first frame) and Chromium ->
  Python (the Python Peer's connect() to its first ``recv()`` of the fake
  camera), median of ``--runs``;
- ``--turn``: the same with both sides relay-only through a local coturn.

Prints one line per number and a JSON line at the end. Uses the test
helpers (real server, Debian's chromium with the fake camera, coturn).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, VideoStreamTrack
from av import VideoFrame

from bench.procstat import cpu_seconds
from peer import Peer
from tests.helpers.server import running_server
from tests.media.coturn import running_coturn
from tests.web.conftest import ARGS, CHROMIUM, MEDIA_ARGS

WIDTH, HEIGHT, FPS = 640, 480, 30


class Gradient(VideoStreamTrack):
    """640x480 at 30 fps: a diagonal gradient that moves every frame."""

    def __init__(self) -> None:
        super().__init__()
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        self._base = ((x + y) % 256).astype(np.uint8)
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._n += 1
        await asyncio.sleep(max(0.0, self._start + self._n / FPS - time.monotonic()))
        plane = self._base + np.uint8(self._n * 3 % 256)  # wraps around
        image = np.dstack([plane, np.flipud(plane), plane[:, ::-1]])
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = self._n * 3000, fractions.Fraction(1, 90000)
        return frame


BROWSER_RECEIVES = """async ([room, pythonId, seconds, policy]) => {
  const { Peer } = await import('/static/rtc-peer.js');
  const peer = new Peer(location.origin, room, { receiveMedia: true, iceTransportPolicy: policy });
  window.peer = peer;
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true;
  document.body.append(video);
  const first = new Promise((resolve) => {
    peer.on('track', (from, track) => {
      if (from !== pythonId || track.kind !== 'video') return;
      video.srcObject = new MediaStream([track]);
      video.requestVideoFrameCallback(() => resolve(performance.now()));
    });
  });
  const t0 = performance.now();
  await peer.connect();
  const firstAt = await first;
  const result = { connectToFrameMs: firstAt - t0 };
  if (seconds > 0) {
    const q = () => video.getVideoPlaybackQuality().totalVideoFrames;
    const f0 = q(); const s0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    result.fps = (q() - f0) / ((performance.now() - s0) / 1000);
  }
  await peer.close();
  return result;
}"""

BROWSER_SENDS = """async ([room, policy]) => {
  const { Peer } = await import('/static/rtc-peer.js');
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  const peer = new Peer(location.origin, room, { iceTransportPolicy: policy });
  peer.addTrack(camera.getVideoTracks()[0]);
  window.peer = peer;
  await peer.connect();
  return peer.id;
}"""


@contextlib.asynccontextmanager
async def setup(turn: bool) -> AsyncIterator[tuple[str, str]]:
    """(server URL, ICE policy) with coturn in front when ``turn``."""
    with tempfile.TemporaryDirectory() as directory:
        if not turn:
            async with running_server("--log-level", "warning") as server:
                yield server.url, "all"
            return
        async with running_coturn(Path(directory)) as coturn, running_server(
            *coturn.server_flags(), "--log-level", "warning"
        ) as server:
            yield server.url, "relay"


async def python_to_browser(browser: Any, url: str, policy: str, room: str, seconds: float) -> dict[str, float]:
    sender = Peer(url, room, ice_transport_policy=policy)  # type: ignore[arg-type]
    sender.add_track(Gradient())
    await sender.connect()
    page = await browser.new_page()
    await page.goto(url + "/")
    try:
        task = asyncio.ensure_future(
            page.evaluate(BROWSER_RECEIVES, [room, sender.id, seconds, policy])
        )
        cpu0, wall0 = cpu_seconds(os.getpid()), time.monotonic()
        result: dict[str, float] = await asyncio.wait_for(task, seconds + 60)
        cpu1, wall1 = cpu_seconds(os.getpid()), time.monotonic()
        if seconds > 0 and cpu0 is not None and cpu1 is not None:
            result["senderCpuPercent"] = 100 * (cpu1 - cpu0) / (wall1 - wall0)
        return result
    finally:
        await page.close()
        await sender.close()


async def browser_to_python(browser: Any, url: str, policy: str, room: str) -> float:
    page = await browser.new_page()
    await page.goto(url + "/")
    try:
        await page.evaluate(BROWSER_SENDS, [room, policy])
        receiver = Peer(url, room, ice_transport_policy=policy)  # type: ignore[arg-type]
        first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        async def on_track(_peer: str, track: MediaStreamTrack) -> None:
            if track.kind == "video" and not first.done():
                await track.recv()
                first.set_result(time.monotonic())

        receiver.on("track", on_track)
        t0 = time.monotonic()
        await receiver.connect()
        try:
            return (await asyncio.wait_for(first, 60) - t0) * 1000
        finally:
            await receiver.close()
    finally:
        await page.evaluate("async () => window.peer && window.peer.close()")
        await page.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    out: dict[str, Any] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS + MEDIA_ARGS, headless=True
        )
        try:
            for turn in ([False, True] if args.turn else [False]):
                tag = "turn" if turn else "loopback"
                async with setup(turn) as (url, policy):
                    long = await python_to_browser(browser, url, policy, f"fps-{tag}", args.seconds)
                    print(f"[{tag}] chromium receives 640x480@30 from python: "
                          f"{long['fps']:.1f} fps over {args.seconds:g} s, "
                          f"sender CPU {long.get('senderCpuPercent', float('nan')):.0f}% of a core",
                          flush=True)
                    to_browser = [long["connectToFrameMs"]]
                    to_python = []
                    for i in range(args.runs):
                        if i:
                            short = await python_to_browser(browser, url, policy, f"p2b-{tag}-{i}", 0)
                            to_browser.append(short["connectToFrameMs"])
                        to_python.append(await browser_to_python(browser, url, policy, f"b2p-{tag}-{i}"))
                    print(f"[{tag}] connect() to first frame, python->chromium: median "
                          f"{statistics.median(to_browser):.0f} ms {sorted(round(v) for v in to_browser)}",
                          flush=True)
                    print(f"[{tag}] connect() to first frame, chromium->python: median "
                          f"{statistics.median(to_python):.0f} ms {sorted(round(v) for v in to_python)}",
                          flush=True)
                    out[tag] = {"fps": long["fps"], "sender_cpu_percent": long.get("senderCpuPercent"),
                                "python_to_chromium_ms": to_browser, "chromium_to_python_ms": to_python}
        finally:
            await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--turn", action="store_true", help="also through a local coturn")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
