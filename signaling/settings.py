"""The server's settings, one frozen value built by ``cli`` (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    auth_secret: str | None = None
    allowed_origins: tuple[str, ...] | None = None  # None: same origin only
    max_peers_per_room: int = 16
    max_relay_bytes: int = 1024 * 1024
    rate_limit: float = 100.0
    rate_limit_bytes: int = 32 * 1024 * 1024  # per second, per connection; 0 = off
    max_rooms_per_connection: int = 32
    resume_grace: float = 15.0
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    stun: tuple[str, ...] = field(default_factory=tuple)
    turn_url: tuple[str, ...] = field(default_factory=tuple)
    turn_secret: str | None = None
    turn_ttl: int = 86400
    log_level: str = "info"
    websocket_compression: bool = False
    connect_timeout: float = 10.0

    @property
    def max_http_buffer_size(self) -> int:
        """Largest Engine.IO payload accepted, and advertised as ``maxPayload``.

        One relay of ``max_relay_bytes`` must fit with its framing: binary
        over polling travels as base64 (4/3 of its size) and the event's own
        JSON (room, event name, ids) adds a few hundred bytes at most.
        """
        return (self.max_relay_bytes * 4 + 2) // 3 + 4096
