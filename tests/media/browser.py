"""Browser Peers for the media tests: one page, peers on both sides of the offerer rule."""

from __future__ import annotations

from typing import Any

IMPORT = "const { Peer } = await import('/static/rtc-peer.js');"

# Peers in `room` until one offers to `pythonId` (lower id) and one answers it;
# the extras leave. window.peers = [offerer, answerer]; each records its tracks.
BOTH_ROLES = """
async ([room, pythonId]) => {
  const { Peer } = await import('/static/rtc-peer.js');
  const kept = { offerer: null, answerer: null };
  for (let i = 0; i < 40 && !(kept.offerer && kept.answerer); i++) {
    const peer = new Peer(location.origin, room, { receiveMedia: true });
    peer.tracks = [];
    peer.on('track', (from, track) => peer.tracks.push({ from, track }));
    peer.got = [];
    peer.on('n', (from, n) => peer.got.push(n));
    await peer.connect();
    const role = peer.id < pythonId ? 'offerer' : 'answerer';
    if (kept[role]) await peer.close(); else kept[role] = peer;
  }
  window.peers = [kept.offerer, kept.answerer];
  return window.peers.map((p) => p.id);
}
"""

WEBRTC_TO = """
async (pythonId) => {
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (window.peers.every((p) => p.transport(pythonId) === 'webrtc')) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
"""

# Plays each peer's video track from pythonId; resolves to the decoded frame
# counts and sizes once every video decoded `frames` frames (or the time ran out).
PLAYS = """
async ([pythonId, frames]) => {
  const deadline = Date.now() + 30000;
  const videos = [];
  for (const peer of window.peers) {
    while (!peer.tracks.some((t) => t.from === pythonId && t.track.kind === 'video') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const found = peer.tracks.find((t) => t.from === pythonId && t.track.kind === 'video');
    const video = document.createElement('video');
    video.muted = true; video.autoplay = true; video.playsInline = true;
    if (found) video.srcObject = new MediaStream([found.track]);
    document.body.append(video);
    videos.push(video);
  }
  const decoded = (v) => v.getVideoPlaybackQuality().totalVideoFrames;
  while (Date.now() < deadline && !videos.every((v) => decoded(v) >= frames))
    await new Promise((r) => setTimeout(r, 50));
  return videos.map((v) => [decoded(v), v.videoWidth, v.videoHeight]);
}
"""


async def close_peers(page: Any) -> None:
    await page.evaluate("async () => { for (const p of window.peers ?? []) await p?.close(); }")
