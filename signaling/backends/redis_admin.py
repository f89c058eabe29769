"""The admin API's reads and its one write over the Redis backend's keys.

Kept beside ``redis_scripts`` (which documents the keys) so the backend's
own scripts stay about serving clients. The kick of a *lost* peer may run on
any node: it marks the peer's expiry under way and runs the ``forget``
script's body in the same atomic step, so it cannot race a resume.
"""

from __future__ import annotations

from .redis_scripts import FORGET

# ARGV[6] pid, ARGV[7] '1', ARGV[8] ''. Returns {0} (unknown peer), {1}
# (connected: its node must end it) or {2, forget's answer}.
KICK_LOST = (
    r"""
local rec = redis.call('HMGET', pk(ARGV[6]), 'node', 'lost')
if not rec[1] then return {0} end
if not rec[2] then return {1} end
redis.call('HSET', pk(ARGV[6]), 'exp', 1)
local function forget()
"""
    + FORGET
    + r"""
end
return {2, forget()}
"""
)

SCAN_BATCH = 500
