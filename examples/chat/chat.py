"""Two (or more) Python peers chatting in a room.

    python examples/chat/chat.py --server http://127.0.0.1:8080 --room lobby --name ada

Each line you type goes to everyone else in the room; what they type is
printed with their name. Presence and the path (relay / webrtc) are shown as
they change. Ctrl-D leaves, Ctrl-C too (exit status 130). ``--server``
defaults to ``$SIGNALING_SERVER_URL`` or http://127.0.0.1:8080; ``-v`` shows
the library's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from peer import Peer, PeerInfo, console


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed on stdin, read without a thread (so Ctrl-C never waits for Enter)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # stdin is a regular file: it never blocks for long
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    try:
        while line := await reader.readline():
            yield line.decode(errors="replace").rstrip("\n")
    finally:
        with contextlib.suppress(OSError, ValueError):  # the terminal is the shell's again
            os.set_blocking(sys.stdin.fileno(), True)
        transport.close()


async def chat(server: str, room: str, name: str) -> None:
    peer = Peer(server, room, meta={"name": name})
    names: dict[str, str] = {}

    @peer.on("peer-joined")
    def joined(peer_id: str, info: PeerInfo) -> None:
        names[peer_id] = str(info.meta.get("name", peer_id[:6]))
        print(f"* {names[peer_id]} is here", flush=True)

    @peer.on("peer-left")
    def left(peer_id: str, reason: str) -> None:
        print(f"* {names.pop(peer_id, peer_id[:6])} left ({reason})", flush=True)

    @peer.on("upgrade")
    def upgrade(peer_id: str, _data: None) -> None:
        print(f"* direct data channel to {names.get(peer_id, peer_id[:6])}", flush=True)

    @peer.on("downgrade")
    def downgrade(peer_id: str, _data: None) -> None:
        print(f"* back to the relay for {names.get(peer_id, peer_id[:6])}", flush=True)

    @peer.on("chat")
    def on_chat(peer_id: str, data: object) -> None:
        text = data.get("text") if isinstance(data, dict) else data
        print(f"<{names.get(peer_id, peer_id[:6])}> {text}", flush=True)

    async with peer:
        print(f"* joined {room} as {name}; type to chat, Ctrl-D to leave", flush=True)
        async for line in stdin_lines():
            if line:
                await peer.emit("chat", {"text": line})


def main() -> int:
    parser = console.ArgumentParser(description="chat with the other peers in a room")
    parser.add_argument("--server", type=console.server_url,
                        default=os.environ.get("SIGNALING_SERVER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--name", default="python")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show library logs")
    args = parser.parse_args()
    console.quiet_logging(args.verbose)
    return console.run_main(lambda: chat(args.server, args.room, args.name))


if __name__ == "__main__":
    sys.exit(main())
