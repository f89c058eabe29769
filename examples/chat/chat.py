"""Two (or more) Python peers chatting in a room.

    python examples/chat/chat.py --server http://127.0.0.1:8080 --room lobby --name ada

Each line you type goes to everyone else in the room; what they type is
printed with their name. Presence and the path (relay / webrtc) are shown as
they change.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from peer import Peer, PeerInfo


async def read_lines(queue: asyncio.Queue[str | None]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        await queue.put(line.rstrip("\n") if line else None)
        if not line:
            return


async def main() -> None:
    parser = argparse.ArgumentParser(description="chat with the other peers in a room")
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--name", default="python")
    args = parser.parse_args()

    peer = Peer(args.server, args.room, meta={"name": args.name})
    names: dict[str, str] = {}

    @peer.on("peer-joined")
    def joined(peer_id: str, info: PeerInfo) -> None:
        names[peer_id] = str(info.meta.get("name", peer_id[:6]))
        print(f"* {names[peer_id]} is here")

    @peer.on("peer-left")
    def left(peer_id: str, reason: str) -> None:
        print(f"* {names.pop(peer_id, peer_id[:6])} left ({reason})")

    @peer.on("upgrade")
    def upgrade(peer_id: str, _data: None) -> None:
        print(f"* direct data channel to {names.get(peer_id, peer_id[:6])}")

    @peer.on("downgrade")
    def downgrade(peer_id: str, _data: None) -> None:
        print(f"* back to the relay for {names.get(peer_id, peer_id[:6])}")

    @peer.on("chat")
    def chat(peer_id: str, data: object) -> None:
        text = data.get("text") if isinstance(data, dict) else data
        print(f"<{names.get(peer_id, peer_id[:6])}> {text}")

    lines: asyncio.Queue[str | None] = asyncio.Queue()
    async with peer:
        print(f"* joined {args.room} as {args.name}; type to chat, Ctrl-D to leave")
        reader = asyncio.create_task(read_lines(lines))
        try:
            while (line := await lines.get()) is not None:
                if line:
                    await peer.emit("chat", {"text": line})
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
