"""A file from one Python peer to another, with the API the CLI is built on.

    python examples/file_transfer/transfer.py receive --room files --output downloads
    python examples/file_transfer/transfer.py send --room files big.iso
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from peer import FileFailed, FileProgress, Peer, PeerInfo, ReceivedFile


async def send(server: str, room: str, path: Path) -> None:
    peer = Peer(server, room, meta={"role": "sender"})
    receiver: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @peer.on("peer-joined")  # also raised for the peers already in the room
    def joined(peer_id: str, info: PeerInfo) -> None:
        if info.meta.get("role") == "receiver" and not receiver.done():
            receiver.set_result(peer_id)

    async with peer:
        target = await receiver
        print(f"sending {path.name} to {target} (via {peer.transport(target)} for now)")
        digest = await peer.send_file(
            target, path,
            on_progress=lambda done, total: print(f"\r{done * 100 // max(total, 1)}%", end=""),
        )
        print(f"\nconfirmed by the receiver: sha256 {digest}, last path {peer.transport(target)}")


async def receive(server: str, room: str, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    peer = Peer(server, room, meta={"role": "receiver"}, download_dir=output)
    done: asyncio.Future[ReceivedFile] = asyncio.get_running_loop().create_future()

    @peer.on("file-progress")
    def progress(_sender: str, state: FileProgress) -> None:
        print(f"\r{state.name}: {state.done}/{state.size} bytes", end="")

    @peer.on("file")
    def file(_sender: str, received: ReceivedFile) -> None:
        done.set_result(received)

    @peer.on("file-failed")
    def failed(_sender: str, failure: FileFailed) -> None:
        print(f"\n{failure.name} failed: {failure.error}")

    async with peer:
        print(f"waiting in {room} as {peer.id}")
        received = await done
    print(f"\nsaved {received.path} ({received.size} bytes, sha256 {received.sha256})")


def main() -> None:
    parser = argparse.ArgumentParser(description="send or receive one file")
    parser.add_argument("--server", default="http://127.0.0.1:8080")
    parser.add_argument("--room", default="files")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("send").add_argument("file", type=Path)
    commands.add_parser("receive").add_argument("--output", type=Path, default=Path("downloads"))
    args = parser.parse_args()
    if args.command == "send":
        asyncio.run(send(args.server, args.room, args.file))
    else:
        asyncio.run(receive(args.server, args.room, args.output))


if __name__ == "__main__":
    main()
