"""A file from one Python peer to another, with the API the CLI is built on.

    python examples/file_transfer/transfer.py receive --room files --output downloads
    python examples/file_transfer/transfer.py send --room files big.iso

``--server`` (default ``$SIGNALING_SERVER_URL`` or http://127.0.0.1:8080),
``--room`` and ``-v`` (library logs) go before or after the subcommand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from peer import FileFailed, FileProgress, Peer, PeerInfo, ReceivedFile, console


async def send(server: str, room: str, path: Path) -> None:
    peer = Peer(server, room, meta={"role": "sender"})
    receiver: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @peer.on("peer-joined")  # also raised for the peers already in the room
    def joined(peer_id: str, info: PeerInfo) -> None:
        if info.meta.get("role") == "receiver" and not receiver.done():
            receiver.set_result(peer_id)

    async with peer:
        print(f"waiting for a receiver in room {room}")
        target = await receiver
        print(f"sending {path.name} to {target} (via {peer.transport(target)} for now)")
        digest = await peer.send_file(
            target, path,
            on_progress=lambda done, total: print(f"\r{done * 100 // max(total, 1)}%", end=""),
        )
        print(f"\nconfirmed by the receiver: sha256 {digest}, last path {peer.transport(target)}")


async def receive(server: str, room: str, output: Path) -> None:
    peer = Peer(server, room, meta={"role": "receiver"}, download_dir=output)  # created if missing
    done: asyncio.Future[ReceivedFile] = asyncio.get_running_loop().create_future()

    @peer.on("file-progress")
    def progress(_sender: str, state: FileProgress) -> None:
        print(f"\r{state.name}: {state.done}/{state.size} bytes", end="")

    @peer.on("file")
    def file(_sender: str, received: ReceivedFile) -> None:
        if not done.done():
            done.set_result(received)

    @peer.on("file-failed")
    def failed(_sender: str, failure: FileFailed) -> None:
        print(f"\n{failure.name} failed: {failure.error}")

    async with peer:
        print(f"waiting in room {room} as {peer.id} for a file, to save in {output}")
        received = await done
    print(f"\nsaved {received.path} ({received.size} bytes, sha256 {received.sha256})")


def main() -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", type=console.server_url, default=argparse.SUPPRESS,
                        help="signaling server URL")
    common.add_argument("--room", default=argparse.SUPPRESS, help="room name (default: files)")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="show library logs")
    parser = console.ArgumentParser(description="send or receive one file", parents=[common])
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=console.ArgumentParser)
    commands.add_parser("send", parents=[common]).add_argument("file", type=Path)
    commands.add_parser("receive", parents=[common]).add_argument(
        "--output", type=Path, default=Path("downloads"))
    args = parser.parse_args()
    server = getattr(args, "server", os.environ.get("SIGNALING_SERVER_URL",
                                                    "http://127.0.0.1:8080"))
    room = getattr(args, "room", "files")
    console.quiet_logging(getattr(args, "verbose", 0))
    if args.command == "send":
        if not args.file.is_file():
            parser.error(f"not a file: {args.file}")
        return console.run_main(lambda: send(server, room, args.file))
    if args.output.exists() and not args.output.is_dir():
        parser.error(f"--output {args.output} is a file; give a directory")
    return console.run_main(lambda: receive(server, room, args.output))


if __name__ == "__main__":
    sys.exit(main())
