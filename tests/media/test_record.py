"""``python -m peer record`` against the real server and a Python peer sending audio and video."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import av
from aiortc import AudioStreamTrack, VideoStreamTrack

from peer import Peer
from tests.helpers.server import ROOT, RunningServer

WAIT = 60.0


async def start_recorder(server: RunningServer, room: str, output: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-X", "faulthandler", "-m", "peer", "record", "--server", server.url, "--room", room,
        "--output", str(output), *extra,
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def read_until(process: asyncio.subprocess.Process, text: str) -> list[str]:
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(WAIT):
        while not lines or text not in lines[-1]:
            line = await process.stderr.readline()
            if not line:
                raise AssertionError(f"recorder ended before {text!r}: {lines}")
            lines.append(line.decode())
    return lines


def media_in(path: Path) -> dict[str, int]:
    """Decoded frames per stream kind: the file is a container PyAV reads to the end."""
    counts = {"audio": 0, "video": 0}
    with av.open(str(path)) as container:
        for frame in container.decode(*container.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            counts[kind] += 1
    return counts


async def test_record_writes_one_playable_file_per_peer_until_the_duration(
    server: RunningServer, tmp_path: Path
) -> None:
    sender = Peer(server.url, "rec")
    sender.add_track(VideoStreamTrack())
    sender.add_track(AudioStreamTrack())
    left: asyncio.Queue[str] = asyncio.Queue()
    sender.on("peer-left", lambda peer_id, _reason: left.put_nowait(peer_id))
    await sender.connect()
    try:
        process = await start_recorder(server, "rec", tmp_path, "--duration", "4")
        lines = await read_until(process, "recording " + sender.id)
        assert "audio+video" in lines[-1]
        rest = await asyncio.wait_for(process.communicate(), WAIT)
        assert process.returncode == 0, rest
        assert f"saved {tmp_path / sender.id}.mkv" in rest[1].decode()
        await asyncio.wait_for(left.get(), WAIT)  # the recorder left the room
    finally:
        await sender.close()
    counts = media_in(tmp_path / f"{sender.id}.mkv")
    assert counts["video"] > 10 and counts["audio"] > 10, counts


async def test_record_stops_cleanly_on_ctrl_c(server: RunningServer, tmp_path: Path) -> None:
    sender = Peer(server.url, "rec-int")
    sender.add_track(VideoStreamTrack())
    await sender.connect()
    try:
        process = await start_recorder(server, "rec-int", tmp_path)
        await read_until(process, "recording " + sender.id)
        process.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(process.communicate(), WAIT)
        assert process.returncode == 130, err
        assert err.decode().splitlines()[-1] == "interrupted"
    finally:
        await sender.close()
    assert media_in(tmp_path / f"{sender.id}.mkv")["video"] > 0
