"""A Socket.IO WebRTC signaling server: rooms, signals, relays, resume."""

__version__ = "0.1.0"
