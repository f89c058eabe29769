"""``python -m peer record``: a silent peer that saves what the others send.

    python -m peer record --server URL --room ROOM --output DIR [--duration S]

Joins ``ROOM`` with meta ``{"role": "recorder"}``, sends nothing, and writes
each remote peer's audio and video to one Matroska file in DIR
(``<peerId>.mkv``: H.264 and AAC through aiortc's ``MediaRecorder``, which
PyAV and ffmpeg read). The tracks of one connection arrive together; a file
starts ``GATHER`` seconds after the first of them, with every track that came
meanwhile. A connection rebuilt later (a network change, the sender adding a
track) starts the next file, ``<peerId>-2.mkv`` and so on, at most
``MAX_FILES_PER_PEER`` per peer. Relay-only peers send no media and get no
file.

Progress on stderr: a line per file started and every ``PROGRESS_EVERY``
seconds the bytes written. It stops at ``--duration`` (exit 0) or on Ctrl-C
or SIGTERM (exit 130), closing every file first so it stays playable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

from . import console
from .peer import Peer

GATHER = 0.5
"""Seconds a file waits for the other tracks of the same connection."""
PROGRESS_EVERY = 5.0
MAX_FILES_PER_PEER = 20
"""Bounds the files one remote peer can make us open by rebuilding its connection."""
INTERRUPTED = 130
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class _Recording:
    path: Path
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    recorder: MediaRecorder | None = None


class Recordings:
    """One file at a time per remote peer, fed by the Peer's ``track`` events."""

    def __init__(self, output: Path, log: TextIO) -> None:
        self.output = output
        self._log = log
        self._current: dict[str, _Recording] = {}
        self._files: dict[str, int] = {}
        self._starting: set[asyncio.Task[None]] = set()
        self.paths: list[Path] = []

    async def on_track(self, peer_id: str, track: MediaStreamTrack) -> None:
        current = self._current.get(peer_id)
        if current is not None and current.recorder is None:
            current.tracks.append(track)  # same connection, file not started yet
            return
        if current is not None:
            await self._stop(peer_id)  # a new connection: a new file
        path = self._next_path(peer_id)
        if path is None:
            return
        recording = self._current[peer_id] = _Recording(path, [track])
        task = asyncio.get_running_loop().create_task(self._start(peer_id, recording))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def on_peer_left(self, peer_id: str, _reason: object) -> None:
        await self._stop(peer_id)

    def _next_path(self, peer_id: str) -> Path | None:
        count = self._files.get(peer_id, 0) + 1
        if count > MAX_FILES_PER_PEER:
            if count == MAX_FILES_PER_PEER + 1:
                self._say(f"{peer_id}: {MAX_FILES_PER_PEER} files already, not recording more")
            self._files[peer_id] = count
            return None
        self._files[peer_id] = count
        stem = _UNSAFE.sub("_", peer_id)[:64] or "peer"
        suffix = "" if count == 1 else f"-{count}"
        path = self.output / f"{stem}{suffix}.mkv"
        while path.exists():  # never overwrite an earlier recording
            count += 1
            path = self.output / f"{stem}-{count}.mkv"
        return path

    async def _start(self, peer_id: str, recording: _Recording) -> None:
        await asyncio.sleep(GATHER)
        if self._current.get(peer_id) is not recording:
            return
        # The container's header is written at the first packet, and a video
        # stream learns its size from its first frame: video goes first, primed.
        tracks = sorted(recording.tracks, key=lambda t: t.kind != "video")
        try:
            primed = [await _Primed.first_frame(t) if t.kind == "video" else t for t in tracks]
        except MediaStreamError:
            return  # the connection closed meanwhile; the next one starts a file
        if self._current.get(peer_id) is not recording:
            return
        recorder = MediaRecorder(str(recording.path))
        for track in primed:
            recorder.addTrack(track)
        recording.recorder = recorder
        self.paths.append(recording.path)
        await recorder.start()
        kinds = "+".join(sorted(t.kind for t in recording.tracks))
        self._say(f"recording {peer_id} ({kinds}) to {recording.path}")

    async def _stop(self, peer_id: str) -> None:
        recording = self._current.pop(peer_id, None)
        if recording is not None and recording.recorder is not None:
            await recording.recorder.stop()
            self._say(f"saved {recording.path} ({_size(recording.path)} bytes)")

    async def report(self) -> None:
        """A progress line every PROGRESS_EVERY seconds while anything records."""
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            for peer_id, recording in list(self._current.items()):
                if recording.recorder is not None:
                    self._say(f"{peer_id}: {_size(recording.path)} bytes in {recording.path.name}")

    async def close(self) -> None:
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        for peer_id in list(self._current):
            await self._stop(peer_id)

    def _say(self, line: str) -> None:
        print(line, file=self._log, flush=True)


class _Primed(MediaStreamTrack):
    """A track whose first frame was read already, to hand out first."""

    def __init__(self, source: MediaStreamTrack, first: Frame | Packet[Any]) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._first: Frame | Packet[Any] | None = first

    @classmethod
    async def first_frame(cls, source: MediaStreamTrack) -> _Primed:
        return cls(source, await source.recv())

    async def recv(self) -> Frame | Packet[Any]:
        first, self._first = self._first, None
        if first is not None:
            return first
        return await self._source.recv()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """The ``record`` subcommand, for :mod:`peer.cli`."""
    sub = commands.add_parser("record", help="save every peer's audio and video, one file each")
    sub.add_argument("--server", required=True, type=console.server_url,
                     help="signaling server URL, e.g. http://127.0.0.1:8080")
    sub.add_argument("--room", required=True, help="room name")
    sub.add_argument("--output", type=Path, default=Path("."),
                     help="directory for the files (default: .)")
    sub.add_argument("--duration", type=console.positive_seconds, default=None,
                     help="stop after this many seconds (default: until Ctrl-C)")
    sub.add_argument("--token", help="JWT for a server started with --auth-secret")
    sub.add_argument("-v", "--verbose", action="count", default=0, help="log more")


async def record(args: argparse.Namespace) -> int:
    """Record until ``--duration`` (0) or Ctrl-C/SIGTERM (130); files are closed either way."""
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    recordings = Recordings(output, sys.stderr)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    peer = Peer(args.server, args.room, meta={"role": "recorder"}, token=args.token)
    peer.on("track", recordings.on_track)
    peer.on("peer-left", recordings.on_peer_left)
    reporter = loop.create_task(recordings.report())
    try:
        joining = loop.create_task(peer.connect())
        stopping = loop.create_task(stop.wait())
        await asyncio.wait([joining, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            await joining  # raises when the server refused
            for signum in signals:  # python-socketio put its own SIGINT handler in at connect
                loop.add_signal_handler(signum, stop.set)
            print(f"recording room {args.room} as {peer.id} into {output}",
                  file=sys.stderr, flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping, args.duration)
        joining.cancel()
        stopping.cancel()
        await asyncio.gather(joining, stopping, return_exceptions=True)
        await recordings.close()
    finally:
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        await recordings.close()
        await peer.close()
        for signum in signals:
            loop.remove_signal_handler(signum)
    if stop.is_set():
        print("interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
    return 0
