"""Which engine carries a connection: libdatachannel (native) or aiortc.

``RTC_PEER_ENGINE`` in the environment: ``auto`` (the default) uses the
native engine for every connection it can carry, ``aiortc`` never uses it,
``native`` requires the library (``Peer()`` raises when it cannot be loaded).
The native engine carries data only, with ICE
transport policy "all": a connection with local tracks, or an offer with
audio or video, goes to aiortc (a later track moves the pair to aiortc at
the next connection, see :mod:`peer.negotiation`).
"""

from __future__ import annotations

import os
from typing import Any

from .library import load

ENV = "RTC_PEER_ENGINE"
SETTINGS = ("auto", "aiortc", "native")
DEFAULT = "auto"


class EngineUnavailable(RuntimeError):
    """``RTC_PEER_ENGINE=native`` where the native engine cannot be used."""


def setting() -> str:
    value = os.environ.get(ENV, DEFAULT).strip().lower() or DEFAULT
    if value not in SETTINGS:
        raise ValueError(f"{ENV}={value!r}: use one of {', '.join(SETTINGS)}")
    return value


def check(mode: str) -> None:
    """Fail early (``Peer.__init__``) when ``mode`` requires an engine that is missing."""
    if mode == "native" and load() is None:
        raise EngineUnavailable(
            f"{ENV}=native but libdatachannel could not be loaded (see the log): "
            "pip install 'rtc-signaling[peer]' on Linux x86_64, or unset it"
        )


def native_library(mode: str, *, media: bool, transport_policy: str) -> Any:
    """The library when this connection goes native under ``mode``, else None (aiortc)."""
    if mode == "aiortc":
        return None
    if media or transport_policy != "all":
        return None
    return load()
