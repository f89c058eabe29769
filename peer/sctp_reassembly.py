"""aiortc 1.16.0: look for complete messages only when a fragment can complete one.

Upstream-ready description: for every DATA chunk received,
``RTCSctpTransport._receive_data_chunk`` adds it to its stream's reassembly
list and calls ``InboundStream.pop_messages``, which walks the list from the
start. A 64 KiB message is about 56 fragments, so each message costs about
1,600 steps of that walk, nearly all finding nothing. A chunk that was
appended after every other one (the usual, in-order case) and is not the
last fragment of its message cannot complete any message: its message's
last fragment has a higher TSN and is not there yet, and no other message
changed. For such a chunk the walk is skipped; in every other case (last
fragment, a chunk filling a gap, FORWARD TSN) it runs unchanged. Nothing on
the wire changes.

Guard: aiortc 1.16.0 exactly; otherwise it does nothing and logs once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiortc
from aiortc.rtcsctptransport import SCTP_DATA_LAST_FRAG, InboundStream

from .dependency_patch import applicable

MADE_FOR = "1.16.0"
_installed = False


def cannot_complete(stream: Any, chunk: Any) -> bool:
    """Whether ``chunk``, just added to ``stream``, sits last and is not a last fragment."""
    return not (chunk.flags & SCTP_DATA_LAST_FRAG) and stream.reassembly[-1] is chunk


def install() -> bool:
    """Patch ``InboundStream.add_chunk`` and ``pop_messages`` once."""
    global _installed
    if _installed:
        return True
    if not applicable("sctp_reassembly", aiortc.__version__, MADE_FOR,
                      [(InboundStream, "add_chunk"), (InboundStream, "pop_messages")]):
        return False
    add_chunk = InboundStream.add_chunk
    pop_messages = InboundStream.pop_messages

    def _add_chunk(self: Any, chunk: Any) -> None:
        add_chunk(self, chunk)
        self._rtc_nothing_new = bool(self.reassembly) and cannot_complete(self, chunk)

    def _pop_messages(self: Any) -> Iterator[tuple[int, int, bytes]]:
        if getattr(self, "_rtc_nothing_new", False):
            self._rtc_nothing_new = False
            return iter(())
        return pop_messages(self)

    InboundStream.add_chunk = _add_chunk  # type: ignore[method-assign]
    InboundStream.pop_messages = _pop_messages  # type: ignore[method-assign]
    _installed = True
    return True
