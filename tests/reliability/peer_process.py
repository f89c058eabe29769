"""A Python Peer in its own process, for F8: ``python -m tests.reliability.peer_process URL ROOM``.

Prints ``id <peerId>`` once connected and ``upgrade <remote>`` for every data
channel that opens, then waits (at most 120 s) to be killed.
"""

from __future__ import annotations

import asyncio
import sys

from peer import Peer

from .support import loopback_ice


async def main(url: str, room: str) -> None:
    peer = Peer(url, room)
    peer.on("upgrade", lambda remote, _: print(f"upgrade {remote}", flush=True))
    await peer.connect()
    print(f"id {peer.id}", flush=True)
    await asyncio.sleep(120)
    await peer.close()


if __name__ == "__main__":
    with loopback_ice():
        asyncio.run(main(sys.argv[1], sys.argv[2]))
