"""A Python participant with a synthetic camera (or a video file), for the browser call demo.

    python examples/browser_video/video_peer.py --server http://127.0.0.1:8080 --room demo
    python examples/browser_video/video_peer.py --room demo --file clip.mp4

joins the room through the ``Peer`` API and sends every peer with WebRTC in
it a generated video (scrolling colour bars and a bouncing square), or the
audio and video of ``--file`` (anything ffmpeg reads, looped), with
``peer.add_track``. Open ``/call.html?room=demo`` and its tile shows up.
Media it receives from the browsers is read and dropped (``track`` events).
Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import logging
import signal
import sys
import time

from aiortc import MediaStreamTrack, VideoStreamTrack
from aiortc.contrib.media import MediaBlackhole, MediaPlayer
from av import VideoFrame

from peer import Peer

log = logging.getLogger("video_peer")

WIDTH, HEIGHT, FPS = 320, 240, 15
BARS = [(235, 235, 235), (235, 235, 16), (16, 235, 235), (16, 235, 16),
        (235, 16, 235), (235, 16, 16), (16, 16, 235), (53, 87, 212)]


class SyntheticVideo(VideoStreamTrack):
    """Colour bars scrolling sideways and a white square bouncing over them."""

    def __init__(self) -> None:
        super().__init__()
        bar = WIDTH // len(BARS)
        row = b"".join(bytes(color) * bar for color in BARS)
        self._row = row * 2  # to slice a scrolled row out of
        self._count = 0
        self._started_at: float | None = None

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Pace frames at FPS on a 90 kHz clock."""
        if self._started_at is None:
            self._started_at = time.monotonic()
        pts = self._count * 90000 // FPS
        await asyncio.sleep(max(0.0, self._started_at + pts / 90000 - time.monotonic()))
        return pts, fractions.Fraction(1, 90000)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        n = self._count
        self._count += 1
        shift = (n * 4 % WIDTH) * 3
        row = self._row[shift : shift + WIDTH * 3]
        image = bytearray(row * HEIGHT)
        size = 48
        x = abs((n * 5) % (2 * (WIDTH - size)) - (WIDTH - size))
        y = abs((n * 3) % (2 * (HEIGHT - size)) - (HEIGHT - size))
        white = b"\xff" * (size * 3)
        for line in range(y, y + size):
            start = (line * WIDTH + x) * 3
            image[start : start + size * 3] = white
        frame = VideoFrame(WIDTH, HEIGHT, "rgb24")
        frame.planes[0].update(bytes(image))
        frame.pts, frame.time_base = pts, time_base
        return frame


def tracks(file: str | None) -> list[MediaStreamTrack]:
    """The synthetic camera, or the audio and video of ``file`` (looped)."""
    if file is None:
        return [SyntheticVideo()]
    player = MediaPlayer(file, loop=True)
    return [t for t in (player.audio, player.video) if t is not None]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--room", required=True)
    parser.add_argument("--name", default="Python (synthetic video)")
    parser.add_argument("--file", help="send this media file instead of the synthetic camera")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    server = args.server.rstrip("/")
    peer = Peer(server, args.room, meta={"name": args.name})
    for track in tracks(args.file):
        peer.add_track(track)
    sink = MediaBlackhole()  # what the browsers send: read, so it does not pile up

    async def on_track(peer_id: str, track: MediaStreamTrack) -> None:
        log.info("%s sends %s", peer_id[:8], track.kind)
        sink.addTrack(track)
        await sink.start()

    peer.on("track", on_track)
    peer.on("peer-joined", lambda peer_id, info: log.info("peer %s (%s)", peer_id[:8],
                                                             info.meta.get("name", "?")))
    stop = asyncio.Event()
    async with peer:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # after connect: socketio sets its own
            loop.add_signal_handler(signum, stop.set)
        print(f"joined {args.room} as {peer.id}: open {server}/call.html?room={args.room}",
              flush=True)
        await stop.wait()
    with contextlib.suppress(Exception):
        await sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
