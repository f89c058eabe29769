"""The admin API's reads and its one write over the Redis backend's keys.

Kept beside ``redis_scripts`` (which documents the keys) so the backend's
own scripts stay about serving clients. A kick may run on any node, in one
atomic step: a *lost* peer's expiry is marked under way and the ``forget``
script's body runs; any other peer leaves its rooms and is marked
``kicked``, which the join, resume and release scripts respect.
"""

from __future__ import annotations

from .redis_scripts import FORGET

# The arguments of FORGET: ARGV[6] pid, ARGV[7] '1', ARGV[8] ''. Returns {0}
# (unknown peer), {2, forget's answer} (it was lost: forgotten) or {1,
# {{room, remaining pids}, ...}} (connected, or its resume is under way: out of
# every room, its token key gone, marked 'kicked' until what holds it ends).
KICK = (
    r"""
local rec = redis.call('HMGET', pk(ARGV[6]), 'node', 'lost', 'tok')
if not rec[1] then return {0} end
if rec[2] then
  redis.call('HSET', pk(ARGV[6]), 'exp', 1)
  local function forget()
"""
    + FORGET
    + r"""
  end
  return {2, forget()}
end
local pid = ARGV[6]
redis.call('HSET', pk(pid), 'kicked', 1)
if rec[3] then redis.call('DEL', P .. 'tok:' .. rec[3]) end
local out = {}
for _, room in ipairs(redis.call('LRANGE', roomsk(pid), 0, -1)) do
  local remaining = remove_from_room(room, pid)
  if remaining then table.insert(out, {room, remaining}) end
end
redis.call('DEL', roomsk(pid))
return {1, out}
"""
)

SCRIPTS = {"kick": KICK}
"""The admin scripts by name; the backend prepends ``PRELUDE`` to each, as to its own."""

SCAN_BATCH = 500
