"""aiortc 1.16.0: acknowledge every second SCTP packet, within 200 ms (RFC 9260 section 6.2).

Upstream-ready description: ``RTCSctpTransport`` sends a SACK for every
packet that carries DATA. RFC 9260 section 6.2 asks for a SACK for at least
every second packet and within 200 ms of an unacknowledged DATA chunk, and
usrsctp (Chromium, Firefox) does so. Acknowledging every packet doubles the
datagrams on the wire: on loopback about 25,000 SACKs a second, each built,
encrypted, sent, received, decrypted and processed by the sender. Here the
first in-order packet after a SACK only arms a 200 ms timer; the second
packet, or the timer, sends the SACK as before. The SACK is still sent at
once, as the RFC requires, when it reports a gap or a duplicate, when the
previous SACK reported one (a gap just filled), after a FORWARD TSN, and
outside the ESTABLISHED state. The SACK itself is unchanged.

Guard: aiortc 1.16.0 exactly (the attributes used are checked too);
otherwise it does nothing and logs once (see peer.dependency_patch).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc.rtcsctptransport import RTCSctpTransport

from .dependency_patch import applicable

MADE_FOR = "1.16.0"
SACK_DELAY = 0.2
"""The longest a SACK waits for a second packet (RFC 9260: at most 500 ms, 200 ms advised)."""
_installed = False


class _Delay:
    """Per-association state: a SACK owed for one packet, and the timer that sends it.

    The timer is not cancelled when the SACK goes out with the next packet;
    it then finds nothing owed. Arming one per 200 ms instead of one per two
    packets keeps timer handles off the per-packet path.
    """

    __slots__ = ("now", "owed", "timer")

    def __init__(self) -> None:
        self.owed = False
        self.timer: asyncio.TimerHandle | None = None
        self.now = True  # the first SACK, and the one after gaps or a FORWARD TSN



def _state(transport: Any) -> _Delay:
    delay: _Delay | None = getattr(transport, "_rtc_sack_delay", None)
    if delay is None:
        delay = transport._rtc_sack_delay = _Delay()
    return delay


def may_delay(transport: Any, delay: _Delay) -> bool:
    """Whether this SACK may wait for the next packet (the RFC's exceptions excluded)."""
    return (
        not delay.owed
        and not delay.now
        and not transport._sack_misordered
        and not transport._sack_duplicates
        and transport._association_state == RTCSctpTransport.State.ESTABLISHED
    )


def install() -> bool:
    """Patch ``RTCSctpTransport._send_sack`` and ``_receive_forward_tsn_chunk`` once."""
    global _installed
    if _installed:
        return True
    owners = [(RTCSctpTransport, "_send_sack"), (RTCSctpTransport, "_receive_forward_tsn_chunk"),
              (RTCSctpTransport.State, "ESTABLISHED")]
    if not applicable("sctp_delayed_sack", aiortc.__version__, MADE_FOR, owners):
        return False
    send_sack: Callable[[Any], Awaitable[None]] = RTCSctpTransport._send_sack
    forward_tsn = RTCSctpTransport._receive_forward_tsn_chunk

    async def send_owed(transport: Any, delay: _Delay) -> None:
        delay.timer = None
        if delay.owed and transport._association_state == RTCSctpTransport.State.ESTABLISHED:
            delay.owed = False
            with contextlib.suppress(ConnectionError):  # DTLS closed meanwhile
                await send_sack(transport)

    async def _send_sack(self: Any) -> None:
        delay = _state(self)
        if may_delay(self, delay):
            delay.owed = True
            self._sack_needed = False
            if delay.timer is None:  # one timer at a time: firing early only acks sooner
                delay.timer = asyncio.get_running_loop().call_later(
                    SACK_DELAY, lambda: asyncio.ensure_future(send_owed(self, delay)))
            return
        delay.owed = False
        delay.now = bool(self._sack_misordered or self._sack_duplicates)
        await send_sack(self)

    async def _receive_forward_tsn_chunk(self: Any, chunk: Any) -> None:
        _state(self).now = True
        await forward_tsn(self, chunk)

    RTCSctpTransport._send_sack = _send_sack  # type: ignore[method-assign]
    RTCSctpTransport._receive_forward_tsn_chunk = _receive_forward_tsn_chunk  # type: ignore[method-assign]
    _installed = True
    return True
