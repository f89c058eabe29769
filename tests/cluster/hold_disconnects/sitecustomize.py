"""Loaded at start-up by a server process whose PYTHONPATH holds this folder.

With ``SIGNALING_TEST_HOLD_FILE`` set, the end of a connection whose peer id
is listed in that file is held (after the service saw it still registered,
as an end that is already awaiting the backend) until the same peer has been
resumed on this node, then goes on, right after the backend's ``resume``
and before the new connection is bound: the window of docs/reliability.md,
bug 7, made certain. It prints what it does on stderr for the test to wait on.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

HOLD_FILE = os.environ.get("SIGNALING_TEST_HOLD_FILE")
HOLD_SECONDS = 20.0

if HOLD_FILE:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # this checkout's signaling
    from signaling.service import SignalingService

    _resumed_peers: dict[str, asyncio.Event] = {}
    _disconnected = SignalingService.disconnected
    _resumed = SignalingService._resumed

    def _say(text: str) -> None:
        print(f"test hook: {text}", file=sys.stderr, flush=True)

    async def disconnected(self: SignalingService, session: Any, *, lost: bool) -> None:
        held = Path(HOLD_FILE).read_text().split()
        if session.registered and session.peer_id in held:
            peer_id = session.peer_id
            _say(f"holding the end of {peer_id}")
            event = _resumed_peers.setdefault(peer_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), HOLD_SECONDS)
            except TimeoutError:
                _say(f"{peer_id} was not resumed within {HOLD_SECONDS:g} s")
            await _disconnected(self, session, lost=lost)
            _say(f"the end of {peer_id} is done")
            return
        await _disconnected(self, session, lost=lost)

    async def resumed(self: SignalingService, session: Any, request: Any, found: Any, token: str) -> Any:
        _resumed_peers.setdefault(found.peer_id, asyncio.Event()).set()
        return await _resumed(self, session, request, found, token)

    SignalingService.disconnected = disconnected  # type: ignore[method-assign]
    SignalingService._resumed = resumed  # type: ignore[method-assign]
