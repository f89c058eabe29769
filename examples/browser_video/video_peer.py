"""A Python participant with a synthetic camera, for the browser call demo.

    python examples/browser_video/video_peer.py --server http://127.0.0.1:8080 --room demo

joins the room over Socket.IO and sends every browser in it a generated
video (scrolling colour bars and a bouncing square) on aiortc. Open
``/call.html?room=demo`` and its tile shows up. It follows the signal
conventions of ``docs/browser.md``: the lower peerId offers, SDP goes whole,
trickled candidates are accepted, the data channel is ``rtc-peer``.

It speaks only WebRTC media and that negotiation, none of the peer-to-peer
messages, so it stays out of the chat. Stop it with Ctrl-C (exit status
130). ``--server`` defaults to ``$SIGNALING_SERVER_URL`` or
http://127.0.0.1:8080; ``-v`` shows its own and the libraries' logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import re
import sys
import time
from typing import Any

import socketio
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

from peer import console

log = logging.getLogger("video_peer")

WIDTH, HEIGHT, FPS = 320, 240, 15
BARS = [(235, 235, 235), (235, 235, 16), (16, 235, 235), (16, 235, 16),
        (235, 16, 235), (235, 16, 16), (16, 16, 235), (53, 87, 212)]
SESSION = re.compile(r"^o=\S+ (\S+)", re.MULTILINE)


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


class Pair:
    """The RTCPeerConnection with one browser: we offer when our id is lower."""

    def __init__(self, app: VideoPeer, remote_id: str) -> None:
        self.app = app
        self.remote_id = remote_id
        self.offerer = app.peer_id < remote_id
        self.pc: RTCPeerConnection | None = None
        self.remote_session: str | None = None
        self.early: list[dict[str, Any]] = []

    async def new_pc(self) -> RTCPeerConnection:
        await self.close()
        pc = RTCPeerConnection(self.app.configuration)
        pc.addTrack(SyntheticVideo())
        self.pc, self.remote_session, self.early = pc, None, []

        @pc.on("connectionstatechange")
        def changed() -> None:
            log.info("%s: %s", self.remote_id[:8], pc.connectionState)

        return pc

    async def offer(self) -> None:
        pc = await self.new_pc()
        pc.createDataChannel("rtc-peer", ordered=True)
        await pc.setLocalDescription(await pc.createOffer())
        # A fresh o= session id says "new connection" to the browser.
        sdp = SESSION.sub(lambda m: m.group(0).replace(m.group(1), str(time.time_ns())), pc.localDescription.sdp, 1)
        await self.app.signal(self.remote_id, {"type": "offer", "sdp": sdp})

    async def on_signal(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "offer" and not self.offerer and isinstance(data.get("sdp"), str):
            match = SESSION.search(data["sdp"])
            session = match.group(1) if match else None
            pc = self.pc
            if pc is None or session != self.remote_session:
                pc = await self.new_pc()
            self.remote_session = session
            await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
            await self.flush()
            await pc.setLocalDescription(await pc.createAnswer())
            await self.app.signal(self.remote_id, {"type": "answer", "sdp": pc.localDescription.sdp})
        elif kind == "answer" and self.pc is not None and self.pc.signalingState == "have-local-offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
            await self.flush()
        elif kind == "candidate" and isinstance(data.get("candidate"), dict):
            self.early.append(data["candidate"])
            await self.flush()
        elif kind == "renegotiate" and self.offerer and not data.get("kinds"):
            await self.offer()  # "no connection to you": start a new one
        # renegotiate with kinds: the browser wants to send media; we show none.

    async def flush(self) -> None:
        pc = self.pc
        if pc is None or pc.remoteDescription is None:
            return
        early, self.early = self.early, []
        for raw in early:
            text = raw.get("candidate")
            if not isinstance(text, str) or not text:
                continue
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
            candidate.sdpMid = raw.get("sdpMid")
            candidate.sdpMLineIndex = raw.get("sdpMLineIndex")
            await pc.addIceCandidate(candidate)

    async def close(self) -> None:
        pc, self.pc = self.pc, None
        if pc is not None:
            await pc.close()


class VideoPeer:
    def __init__(self, server: str, room: str, name: str) -> None:
        self.server, self.room, self.name = server, room, name
        # handle_sigint=False: console.run_main turns Ctrl-C into a clean exit.
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.peer_id = ""
        self.pairs: dict[str, Pair] = {}
        self.configuration = RTCConfiguration()
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.sio.on("peer-joined", lambda p: self.inbox.put_nowait(("joined", p)))
        self.sio.on("peer-left", lambda p: self.inbox.put_nowait(("left", p)))
        self.sio.on("signal", lambda p: self.inbox.put_nowait(("signal", p)))
        self.sio.on("disconnect", lambda *_: self.inbox.put_nowait(("gone", None)))

    async def signal(self, to: str, data: dict[str, Any]) -> None:
        try:
            ack = await self.sio.call("signal", {"room": self.room, "to": to, "data": data}, timeout=10)
        except socketio.exceptions.SocketIOError as exc:
            log.warning("signal to %s not sent: %r", to[:8], exc)
            return
        if not ack.get("ok"):
            log.warning("signal to %s refused: %s", to[:8], ack.get("error"))

    async def run(self) -> None:
        await self.sio.connect(self.server, transports=["websocket"])
        ack = await self.sio.call(
            "join", {"room": self.room, "meta": {"name": self.name}, "webrtc": True}, timeout=10
        )
        if not ack.get("ok"):
            raise SystemExit(f"join refused: {ack['error']['code']}: {ack['error']['message']}")
        self.peer_id = ack["peerId"]
        self.configuration = RTCConfiguration(
            [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
             for s in ack["iceServers"]]
        )
        print(f"joined {self.room} as {self.peer_id}: open {self.server}/call.html?room="
              f"{self.room} (waiting for browsers)", flush=True)
        for info in ack["peers"]:
            await self.add(info)
        # One queue, handled in order: aiortc's description calls are async.
        while True:
            kind, payload = await self.inbox.get()
            try:
                if kind == "gone":
                    return
                if kind == "joined":
                    await self.add(payload)
                elif kind == "left" and payload["peerId"] in self.pairs:
                    await self.pairs.pop(payload["peerId"]).close()
                elif kind == "signal" and payload["from"] in self.pairs:
                    await self.pairs[payload["from"]].on_signal(payload["data"])
            except (ValueError, KeyError, TypeError, AssertionError, InternalError,
                    InvalidAccessError, InvalidStateError, OperationError) as exc:
                # SDP or a state aiortc cannot use: log it and go on with the others.
                log.warning("%s from a peer failed: %r", kind, exc)

    async def add(self, info: dict[str, Any]) -> None:
        if not info.get("webrtc", True) or info["peerId"] in self.pairs:
            return
        pair = self.pairs[info["peerId"]] = Pair(self, info["peerId"])
        log.info("peer %s (%s)", info["peerId"][:8], info.get("meta", {}).get("name", "?"))
        if pair.offerer:
            await pair.offer()

    async def close(self) -> None:
        for pair in self.pairs.values():
            await pair.close()
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


async def run(server: str, room: str, name: str) -> int:
    peer = VideoPeer(server, room, name)
    try:
        await peer.run()
    except socketio.exceptions.ConnectionError as exc:
        print(f"error: cannot reach the signaling server at {server}: {exc}", file=sys.stderr)
        return 1
    finally:
        await peer.close()
    return 0


def main() -> int:
    parser = console.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", type=console.server_url,
                        default=os.environ.get("SIGNALING_SERVER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--room", required=True)
    parser.add_argument("--name", default="Python (synthetic video)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show logs")
    args = parser.parse_args()
    console.quiet_logging(args.verbose)
    return console.run_main(lambda: run(args.server, args.room, args.name))


if __name__ == "__main__":
    sys.exit(main())
