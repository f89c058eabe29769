"""A ctypes binding of libdatachannel's C API (``rtc/rtc.h``), loaded from an installed wheel.

Two PyPI wheels bundle ``libdatachannel`` as a plain shared library that
exports the whole C API; their own Python layers are not used:

- ``aiolibdatachannel`` 2026.4.21 (``aiolibdatachannel/_lib/libdatachannel.so.0.24.2``):
  an optimised build, preferred. Its Python code needs CPython 3.12, the
  library does not: on 3.11 it is installed with ``pip install --no-deps
  --ignore-requires-python`` (scripts/test does).
- ``pylibdatachannel`` 0.2.0 (``pylibdatachannel.libs/libdatachannel-<hash>.so.0.22.2``):
  the fallback. Its usrsctp was compiled without optimisation, which halves
  the engine's throughput (docs/benchmarks.md).

``RTC_NATIVE_LIBRARY=/path/to/libdatachannel.so.X.Y.Z`` picks a file instead
(a system build, say). ctypes releases the GIL around every foreign call and
takes it in callbacks, so closing never waits on ourselves.

The structures below are those of ``rtc.h`` in libdatachannel 0.22 and 0.24,
which are the same for everything bound here. A library is used only when the
version in its file name is one of those: on any other, :func:`load` returns
None and says why once, and the peer uses aiortc.

``RTC_NATIVE_LOG=5`` (libdatachannel's log level, 0-6) prints the library's
own log to stdout, for debugging; by default it logs nothing.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger("peer.native")

MADE_FOR = ("0.22", "0.24")
"""The libdatachannel minor versions whose ``rtc.h`` these declarations follow."""

_LIB_NAME = re.compile(r"^libdatachannel(?:-[0-9a-f]+)?\.so\.(\d+)\.(\d+)\.(\d+)$")

# rtcState, rtcGatheringState (enums are C ints)
RTC_NEW, RTC_CONNECTING, RTC_CONNECTED, RTC_DISCONNECTED, RTC_FAILED, RTC_CLOSED = range(6)
RTC_GATHERING_COMPLETE = 2
RTC_LOG_NONE, RTC_LOG_WARNING = 0, 3
RTC_TRANSPORT_POLICY_ALL = 0
RTC_ERR_SUCCESS = 0
RTC_ERR_NOT_AVAIL = -3
RTC_ERR_TOO_SMALL = -4


class RtcConfiguration(ctypes.Structure):
    _fields_ = [
        ("iceServers", ctypes.POINTER(ctypes.c_char_p)),
        ("iceServersCount", ctypes.c_int),
        ("proxyServer", ctypes.c_char_p),
        ("bindAddress", ctypes.c_char_p),
        ("certificateType", ctypes.c_int),
        ("iceTransportPolicy", ctypes.c_int),
        ("enableIceTcp", ctypes.c_bool),
        ("enableIceUdpMux", ctypes.c_bool),
        ("disableAutoNegotiation", ctypes.c_bool),
        ("forceMediaTransport", ctypes.c_bool),
        ("portRangeBegin", ctypes.c_uint16),
        ("portRangeEnd", ctypes.c_uint16),
        ("mtu", ctypes.c_int),
        ("maxMessageSize", ctypes.c_int),
    ]


class RtcReliability(ctypes.Structure):
    _fields_ = [
        ("unordered", ctypes.c_bool),
        ("unreliable", ctypes.c_bool),
        ("maxPacketLifeTime", ctypes.c_uint),
        ("maxRetransmits", ctypes.c_uint),
    ]


class RtcDataChannelInit(ctypes.Structure):
    _fields_ = [
        ("reliability", RtcReliability),
        ("protocol", ctypes.c_char_p),
        ("negotiated", ctypes.c_bool),
        ("manualStream", ctypes.c_bool),
        ("stream", ctypes.c_uint16),
    ]


class RtcSctpSettings(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "recvBufferSize", "sendBufferSize", "maxChunksOnQueue", "initialCongestionWindow",
        "maxBurst", "congestionControlModule", "delayedSackTimeMs", "minRetransmitTimeoutMs",
        "maxRetransmitTimeoutMs", "initialRetransmitTimeoutMs", "maxRetransmitAttempts",
        "heartbeatIntervalMs",
    )]


_vp = ctypes.c_void_p
_int = ctypes.c_int
_str = ctypes.c_char_p
# Strings arriving in callbacks are declared as void* and copied with
# ctypes.string_at: a c_char_p argument would stop at the first NUL byte.
DescriptionCallback = ctypes.CFUNCTYPE(None, _int, _vp, _vp, _vp)
CandidateCallback = ctypes.CFUNCTYPE(None, _int, _vp, _vp, _vp)
StateCallback = ctypes.CFUNCTYPE(None, _int, _int, _vp)
DataChannelCallback = ctypes.CFUNCTYPE(None, _int, _int, _vp)
IdCallback = ctypes.CFUNCTYPE(None, _int, _vp)
ErrorCallback = ctypes.CFUNCTYPE(None, _int, _vp, _vp)
MessageCallback = ctypes.CFUNCTYPE(None, _int, _vp, _int, _vp)
LogCallback = ctypes.CFUNCTYPE(None, _int, _vp)

_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "rtcInitLogger": (None, [_int, LogCallback]),
    "rtcPreload": (None, []),
    "rtcCleanup": (None, []),
    "rtcSetSctpSettings": (_int, [ctypes.POINTER(RtcSctpSettings)]),
    "rtcCreatePeerConnection": (_int, [ctypes.POINTER(RtcConfiguration)]),
    "rtcClosePeerConnection": (_int, [_int]),
    "rtcDeletePeerConnection": (_int, [_int]),
    "rtcSetLocalDescriptionCallback": (_int, [_int, DescriptionCallback]),
    "rtcSetLocalCandidateCallback": (_int, [_int, CandidateCallback]),
    "rtcSetStateChangeCallback": (_int, [_int, StateCallback]),
    "rtcSetGatheringStateChangeCallback": (_int, [_int, StateCallback]),
    "rtcSetDataChannelCallback": (_int, [_int, DataChannelCallback]),
    "rtcSetLocalDescription": (_int, [_int, _str]),
    "rtcSetRemoteDescription": (_int, [_int, _str, _str]),
    "rtcAddRemoteCandidate": (_int, [_int, _str, _str]),
    "rtcGetLocalDescription": (_int, [_int, _vp, _int]),
    "rtcGetSelectedCandidatePair": (_int, [_int, _vp, _int, _vp, _int]),
    "rtcGetRemoteMaxMessageSize": (_int, [_int]),
    "rtcCreateDataChannelEx": (_int, [_int, _str, ctypes.POINTER(RtcDataChannelInit)]),
    "rtcDeleteDataChannel": (_int, [_int]),
    "rtcGetDataChannelLabel": (_int, [_int, _vp, _int]),
    "rtcSetOpenCallback": (_int, [_int, IdCallback]),
    "rtcSetClosedCallback": (_int, [_int, IdCallback]),
    "rtcSetErrorCallback": (_int, [_int, ErrorCallback]),
    "rtcSetMessageCallback": (_int, [_int, MessageCallback]),
    "rtcSetAvailableCallback": (_int, [_int, IdCallback]),
    "rtcReceiveMessage": (_int, [_int, _vp, ctypes.POINTER(_int)]),
    "rtcSetBufferedAmountLowCallback": (_int, [_int, IdCallback]),
    "rtcSetBufferedAmountLowThreshold": (_int, [_int, _int]),
    "rtcGetBufferedAmount": (_int, [_int]),
    "rtcSendMessage": (_int, [_int, _vp, _int]),
    "rtcMaxMessageSize": (_int, [_int]),
    "rtcClose": (_int, [_int]),
    "rtcIsOpen": (ctypes.c_bool, [_int]),
}


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_libraries() -> list[Path]:
    """Every bundled ``libdatachannel`` of the wheels above, preferred first."""
    found: list[Path] = []
    aio = _package_dir("aiolibdatachannel")
    if aio is not None:
        found += sorted((aio / "_lib").glob("libdatachannel.so.*.*.*"))
    pylib = _package_dir("pylibdatachannel")
    if pylib is not None:
        found += sorted((pylib.parent / "pylibdatachannel.libs").glob("libdatachannel*.so.*"))
    return found


def library_path() -> Path | None:
    """The library to load: ``RTC_NATIVE_LIBRARY``, else the first of :func:`installed_libraries`."""
    chosen = os.environ.get("RTC_NATIVE_LIBRARY")
    if chosen:
        return Path(chosen)
    found = installed_libraries()
    return found[0] if found else None


def library_version(path: Path) -> str | None:
    """``"0.22.2"`` from ``libdatachannel-<hash>.so.0.22.2``; None for any other name."""
    match = _LIB_NAME.match(path.name)
    return ".".join(match.groups()) if match else None


def version_matches(version: str | None, made_for: tuple[str, ...] = MADE_FOR) -> bool:
    return version is not None and any(version.startswith(minor + ".") for minor in made_for)


_lib: Any = None
_tried = False


def load() -> Any:
    """The loaded library with its prototypes set, or None (said once in the log, then cached)."""
    global _lib, _tried
    if _tried:
        return _lib
    _tried = True
    path = library_path()
    if path is None:
        logger.info("native data channels unavailable: neither aiolibdatachannel nor "
                    "pylibdatachannel is installed")
        return None
    version = library_version(path)
    if not version_matches(version):
        logger.warning("native data channels not used: made for libdatachannel %s, found %s "
                       "(%s); the peer uses aiortc", " or ".join(f"{v}.x" for v in MADE_FOR),
                       version, path.name)
        return None
    try:
        # pylibdatachannel's OpenSSL, by path first: its library names it by soname only
        # (aiolibdatachannel's finds its own through its RPATH, a system build the
        # system's). Only from a wheel's ``*.libs`` folder, never from a system one.
        if path.parent.name.endswith(".libs"):
            for dependency in sorted(path.parent.glob("libcrypto*")) + sorted(
                path.parent.glob("libssl*")
            ):
                ctypes.CDLL(str(dependency))
        lib = ctypes.CDLL(str(path))
        for name, (restype, argtypes) in _PROTOTYPES.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
    except (OSError, AttributeError) as exc:
        logger.warning("native data channels not used: %s; the peer uses aiortc", exc)
        return None
    # Keep the library's global state (threads, usrsctp, OpenSSL) up until exit: by
    # default it is torn down whenever the last connection goes and rebuilt for
    # the next one, which races with connections made meanwhile (a failed
    # DTLS handshake or description now and then when connections churn).
    lib.rtcPreload()
    lib.rtcInitLogger(int(os.environ.get("RTC_NATIVE_LOG", RTC_LOG_NONE)), LogCallback())
    _lib = lib
    return lib


def read_string(getter: Any, *args: Any) -> str | None:
    """Call a ``rtcGet...(..., buffer, size)`` function; None when it fails."""
    size = 4096
    while size <= 1 << 20:
        buffer = ctypes.create_string_buffer(size)
        result = getter(*args, buffer, size)
        if result == RTC_ERR_TOO_SMALL:
            size *= 4
            continue
        return buffer.value.decode("utf-8", "replace") if result >= 0 else None
    return None
