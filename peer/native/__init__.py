"""A native data-channel engine: libdatachannel through ctypes (see docs/python.md)."""
