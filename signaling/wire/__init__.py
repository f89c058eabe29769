"""The project's own Engine.IO v4 / Socket.IO v5 protocol code, sans I/O.

Bytes and events in, bytes and events out: nothing here reads a socket,
starts a task or looks at a clock (times are passed in). The aiohttp shell
in ``signaling.transport`` feeds it.
"""
