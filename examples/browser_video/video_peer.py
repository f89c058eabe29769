"""A Python participant with a synthetic camera (or a video file), for the browser call demo.

    python examples/browser_video/video_peer.py --server http://127.0.0.1:8080 --room demo
    python examples/browser_video/video_peer.py --room demo --file clip.mp4

joins the room through the ``Peer`` API and sends every peer with WebRTC in
it a generated video (scrolling colour bars and a bouncing square), or the
audio and video of ``--file`` (anything ffmpeg reads, looped), with
``peer.add_track``. Open ``/call.html?room=demo`` and its tile shows up.
Media it receives from the browsers is read and dropped (``track`` events).

Stop it with Ctrl-C (exit status 130). ``--server`` defaults to
``$SIGNALING_SERVER_URL`` or http://127.0.0.1:8080; ``-v`` shows its own and
the libraries' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import sys
import time

from aiortc import MediaStreamTrack, VideoStreamTrack
from aiortc.contrib.media import MediaBlackhole, MediaPlayer
from av import VideoFrame

from peer import Peer, console

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


async def run(server: str, room: str, name: str, file: str | None) -> int:
    peer = Peer(server, room, meta={"name": name})
    for track in tracks(file):
        peer.add_track(track)
    sink = MediaBlackhole()  # what the browsers send: read, so it does not pile up

    async def on_track(peer_id: str, track: MediaStreamTrack) -> None:
        log.info("%s sends %s", peer_id[:8], track.kind)
        sink.addTrack(track)
        await sink.start()

    peer.on("track", on_track)
    peer.on("peer-joined", lambda peer_id, info: log.info("peer %s (%s)", peer_id[:8],
                                                             info.meta.get("name", "?")))
    try:
        async with peer:
            print(f"joined {room} as {peer.id}: open {server}/call.html?room={room}",
                  flush=True)
            await asyncio.Event().wait()  # until Ctrl-C or SIGTERM cancels it
    finally:
        with contextlib.suppress(Exception):
            await sink.stop()
    return 0


def main() -> int:
    parser = console.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", type=console.server_url,
                        default=os.environ.get("SIGNALING_SERVER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--room", required=True)
    parser.add_argument("--name", default="Python (synthetic video)")
    parser.add_argument("--file", help="send this media file (looped) instead of the synthetic camera")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show logs")
    args = parser.parse_args()
    console.quiet_logging(args.verbose)
    return console.run_main(lambda: run(args.server, args.room, args.name, args.file))


if __name__ == "__main__":
    sys.exit(main())
