"""ICE restart between browsers: the TURN server they relay through goes away and comes back.

Two relay-only browser Peers (one page) connect through coturn; coturn is
stopped and started again on the same port. The pair goes "disconnected",
restarts ICE on the same RTCPeerConnection with fresh credentials, and the
same data channel and video carry on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.coturn import running_coturn
from tests.helpers.server import running_server
from tests.web.pages import blank_page

PAIR = """async () => {
  const { Peer } = await import('/static/rtc-peer.js');
  const camera = await navigator.mediaDevices.getUserMedia({ video: true });
  const a = new Peer(location.origin, 'restart', { iceTransportPolicy: 'relay', stream: camera });
  const b = new Peer(location.origin, 'restart', { iceTransportPolicy: 'relay', receiveMedia: true });
  b.got = [];
  b.on('n', (_from, n) => b.got.push(n));
  b.tracks = [];
  b.on('track', (_from, track) => b.tracks.push(track));
  await a.connect();
  await b.connect();
  window.pair = { a, b };
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && !(a.transport(b.id) === 'webrtc' && b.tracks.length))
    await new Promise((r) => setTimeout(r, 50));
  const n = a._negotiators.get(b.id);
  window.before = { pc: n.pc, channel: n.channel };
  return (await a.path(b.id)).candidate;
}"""

# Waits for the pair to come back after the restart; sends numbered messages all along.
AFTER = """async () => {
  const { a, b } = window.pair;
  const n = a._negotiators.get(b.id);
  const m = b._negotiators.get(a.id);  // whichever side notices first restarts
  const restarts = () => n.restarts + m.restarts;
  const deadline = Date.now() + 40000;
  let sent = 0;
  while (Date.now() < deadline && !(restarts() > 0 && n.state === 'connected')) {
    await a.emit('n', sent++, { to: b.id });
    await new Promise((r) => setTimeout(r, 100));
  }
  await a.emit('n', sent++, { to: b.id });
  while (Date.now() < deadline && b.got.length < sent) await new Promise((r) => setTimeout(r, 50));
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true;
  video.srcObject = new MediaStream([b.tracks[b.tracks.length - 1]]);
  document.body.append(video);
  const startFrames = () => video.getVideoPlaybackQuality().totalVideoFrames;
  while (Date.now() < deadline && startFrames() < 10) await new Promise((r) => setTimeout(r, 50));
  return {
    restarts: restarts(), state: n.state, samePc: n.pc === window.before.pc,
    sameChannel: n.channel === window.before.channel,
    inOrder: b.got.every((value, i) => value === i) && b.got.length === sent,
    frames: startFrames(), candidate: (await a.path(b.id)).candidate,
  };
}"""


async def test_browsers_restart_ice_when_their_turn_server_comes_back(
    browser: Any, tmp_path: Path
) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    async with (
        running_coturn(tmp_path / "first") as first,
        running_server(*first.server_flags()) as server,
    ):
        context, page, errors = await blank_page(browser, server.url)
        try:
            assert await page.evaluate(PAIR) == "relay"
            await first.stop()
            async with running_coturn(tmp_path / "second", port=first.port, secret=first.secret):
                after = await page.evaluate(AFTER)
                await page.evaluate(
                    "async () => { await window.pair.a.close(); await window.pair.b.close(); }"
                )
        finally:
            await context.close()
        assert errors == []
    assert after["restarts"] >= 1 and after["state"] == "connected", after
    assert after["samePc"] and after["sameChannel"], after
    assert after["inOrder"] and after["frames"] >= 10, after
    assert after["candidate"] == "relay", after
