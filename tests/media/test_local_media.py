"""The fan-out of one application track to every connection (peer/media.py)."""

from __future__ import annotations

import asyncio
import fractions

from aiortc import MediaStreamTrack
from av import VideoFrame

from peer.media import LocalMedia


class RgbCamera(MediaStreamTrack):
    """Numbered 64x48 rgb24 frames, as a camera or a synthetic source gives them."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(0.01)
        frame = VideoFrame(64, 48, "rgb24")
        frame.pts, frame.time_base = self.count, fractions.Fraction(1, 30)
        self.count += 1
        return frame


async def test_every_connection_gets_yuv420p_frames_converted_once() -> None:
    """aiortc's encoders convert a frame that is not yuv420p through a converter
    cached on the frame; the relay gives one frame object to every connection, so
    two encoder threads converting it at once crashed the process. Frames must
    arrive converted, and each subscription must see the same converted frame."""
    media = LocalMedia()
    camera = RgbCamera()
    assert media.add(camera)
    first, second = media.subscribe(camera), media.subscribe(camera)
    try:
        a, b = await asyncio.wait_for(asyncio.gather(first.recv(), second.recv()), 5)
        assert isinstance(a, VideoFrame) and isinstance(b, VideoFrame)
        assert a.format.name == b.format.name == "yuv420p"
        assert a is b  # converted once, upstream of the fan-out
        assert (a.width, a.height, a.time_base) == (64, 48, fractions.Fraction(1, 30))
    finally:
        first.stop()
        second.stop()
        camera.stop()
