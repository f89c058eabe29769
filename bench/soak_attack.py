"""L9 attacker: repeats three abuses against one server while legit load runs.

    python -m bench.soak_attack --url URL --duration 35

Each round, one after the other:

- B38 flood: a Socket.IO client joins a room of its own and emits ``signal``
  1,000 times a second without acks; it should be rate-limited, then
  disconnected by the server;
- B02: a polling session POSTs 1.1 MB, or 100 KB more than the server's
  advertised ``maxPayload`` if that is larger; it should get 413 at once;
- B27: a websocket session announces ``4599999999-["bin", ...]`` (far more
  binary attachments than allowed) and starts sending 900 KB binary frames;
  it should be closed at the header.

Prints one JSON line: rounds, how each abuse ended, and ``dropped`` (every
attacker connection ended by the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import socketio

FLOOD_RATE = 1000
FLOOD_LIMIT = 5.0  # seconds a flooder may last


async def flood(url: str) -> dict[str, Any]:
    sio = socketio.AsyncClient(reconnection=False)
    rejected: list[Any] = []
    gone = asyncio.Event()
    sio.on("rejected", rejected.append)
    sio.on("disconnect", lambda *args: gone.set())
    await sio.connect(url, transports=["websocket"], wait_timeout=10)
    ack = await sio.call("join", {"room": "attacker"}, timeout=10)
    peer_id = ack.get("peerId")
    started = time.monotonic()
    sent = 0
    while not gone.is_set() and time.monotonic() - started < FLOOD_LIMIT:
        for _ in range(FLOOD_RATE // 100):
            if not sio.connected:
                break
            try:
                await sio.emit("signal", {"room": "attacker", "to": peer_id, "data": {"x": sent}})
            except Exception:  # noqa: BLE001 - the server cut us off
                break
            sent += 1
        try:
            await asyncio.wait_for(gone.wait(), 0.01)
        except TimeoutError:
            pass
    took = time.monotonic() - started
    dropped = gone.is_set()
    if sio.connected:
        await sio.disconnect()
    codes = sorted({r.get("error", {}).get("code") for r in rejected if isinstance(r, dict)})
    return {"sent": sent, "rejected": len(rejected), "codes": codes, "dropped": dropped,
            "seconds": round(took, 2)}


async def big_post(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as reply:
        text = await reply.text()
    opened = json.loads(text[1:])
    sid = opened["sid"]
    # B02 names 1.1 MB; the contract lets the limit follow --max-relay-bytes
    # (base64 framing included), so go past whatever the server advertises.
    size = max(1_100_000, int(opened.get("maxPayload", 0)) + 100_000)
    started = time.monotonic()
    body = b"4" + b"x" * size
    try:
        async with http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                             data=body, headers={"Content-Type": "text/plain"}) as reply:
            status = reply.status
    except aiohttp.ClientError as exc:
        status = type(exc).__name__
    return {"status": status, "bytes": size, "seconds": round(time.monotonic() - started, 2),
            "dropped": status in (400, 413) or isinstance(status, str)}


async def attachments(url: str, http: aiohttp.ClientSession) -> dict[str, Any]:
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    started = time.monotonic()
    frames = 0
    async with http.ws_connect(ws_url) as ws:
        await ws.receive(timeout=10)  # open
        await ws.send_str("40")
        await ws.receive(timeout=10)  # connect
        await ws.send_str('4599999999-["bin",{"_placeholder":true,"num":0}]')
        chunk = b"\x00" * 900_000
        try:
            for _ in range(300):
                if ws.closed:
                    break
                await ws.send_bytes(chunk)
                frames += 1
                await asyncio.sleep(0)
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass
        msg = await ws.receive(timeout=5)
        closed = ws.closed or msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                           aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR)
    return {"frames_sent": frames, "closed": closed, "dropped": closed,
            "seconds": round(time.monotonic() - started, 2)}


async def main_async(url: str, duration: float) -> dict[str, Any]:
    end = time.monotonic() + duration
    rounds: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < end:
            one: dict[str, Any] = {}
            for name, attack in (("flood", lambda: flood(url)), ("post", lambda: big_post(url, http)),
                                 ("attachments", lambda: attachments(url, http))):
                try:
                    one[name] = await asyncio.wait_for(attack(), 20)
                except Exception as exc:  # noqa: BLE001 - reported
                    one[name] = {"error": repr(exc), "dropped": False}
            rounds.append(one)
    dropped = bool(rounds) and all(r[k]["dropped"] for r in rounds for k in r)
    return {"rounds": len(rounds), "dropped": dropped, "first": rounds[0] if rounds else None,
            "failures": [r for r in rounds if not all(v["dropped"] for v in r.values())][:3]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--duration", type=float, default=30)
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args.url, args.duration))), flush=True)


if __name__ == "__main__":
    main()
