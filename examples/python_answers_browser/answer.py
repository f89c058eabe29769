"""A Python peer that answers whatever the browser demos send it.

    python examples/python_answers_browser/answer.py --room lobby

- ``chat`` {text}: answers the sender alone with ``chat`` {text: "python heard: ..."};
- a file (the files demo): saved under ./received (created when needed),
  then a chat line with its SHA-256;
- any other event: echoed back to the sender under the same name, as it came
  (JSON value or bytes).

``--server`` defaults to ``$SIGNALING_SERVER_URL`` or http://127.0.0.1:8080;
``-v`` shows the library's logs; Ctrl-C leaves (exit status 130).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from peer import Peer, PeerInfo, ReceivedFile, console


async def answer(server: str, room: str, echo_events: list[str]) -> None:
    peer = Peer(server, room, meta={"name": "python"}, download_dir="received")

    @peer.on("peer-joined")
    async def greet(peer_id: str, info: PeerInfo) -> None:
        print(f"{info.meta.get('name', peer_id)} joined", flush=True)
        await peer.emit("chat", {"text": "hello from Python (aiortc)"}, to=peer_id)

    @peer.on("upgrade")
    def upgraded(peer_id: str, _data: None) -> None:
        print(f"data channel to {peer_id} open", flush=True)

    @peer.on("chat")
    async def chat(sender: str, data: Any) -> None:
        text = data.get("text") if isinstance(data, dict) else data
        print(f"{sender}: {text}", flush=True)
        await peer.emit("chat", {"text": f"python heard: {text}"}, to=sender)

    @peer.on("file")
    async def file(sender: str, received: ReceivedFile) -> None:
        print(f"got {received.name} ({received.size} bytes) from {sender}, saved to "
              f"{received.path}", flush=True)
        await peer.emit("chat", {"text": f"saved {received.name}, sha256 {received.sha256}"},
                        to=sender)

    for event in echo_events:
        def echo(sender: str, data: Any, event: str = event) -> Any:
            return peer.emit(event, data, to=sender)

        peer.on(event, echo)

    async with peer:
        print(f"in room {room} as {peer.id}; open the chat or files demo in a browser",
              flush=True)
        await asyncio.Event().wait()  # until Ctrl-C


def main() -> int:
    parser = console.ArgumentParser(description="answer the browser demos")
    parser.add_argument("--server", type=console.server_url,
                        default=os.environ.get("SIGNALING_SERVER_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--room", default="lobby")
    parser.add_argument("--echo", nargs="*", default=["ping", "echo"],
                        help="event names to echo back (default: ping echo)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show library logs")
    args = parser.parse_args()
    console.quiet_logging(args.verbose)
    return console.run_main(lambda: answer(args.server, args.room, args.echo))


if __name__ == "__main__":
    sys.exit(main())
