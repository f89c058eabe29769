"""What ``RedisBackend`` keeps in Redis: the Lua scripts and the blobs they store.

Each backend operation is one script. A script runs atomically in Redis, so each operation is one decision that no
other node can interleave with (two joins racing for the last seat, a resume
racing the expiry of the same peer, two survivors reaping one dead node).

Every script starts with :data:`PRELUDE` and gets the same first five
arguments: ``ARGV[1]`` the key prefix, ``ARGV[2]``/``ARGV[3]`` the mailbox
bounds (messages, bytes), ``ARGV[4]`` this node's id, ``ARGV[5]`` the
lifetime (ms) of a live peer's keys; its own arguments follow from
``ARGV[6]``. Keys are built from the prefix inside the scripts, so the
backend needs one Redis (or a primary with replicas), not a Redis Cluster.
The keys, with ``P`` the prefix::

    P peer:<pid>          hash: tok, node, lost (deadline), mb (mailbox bytes),
                          md (dropped), exp (expiry under way), pn (entries
                          waiting for it in a node's inbox), kicked (an
                          operator kicked it: no rooms, no token key); while
                          a resume took it from another node's open
                          connection: cn (that node), ct (that connection's
                          token), cl (when that connection ended meanwhile)
    P peer:<pid>:rooms    list: the peer's rooms, in join order
    P mbox:<pid>          list: "<size>|<message id>" kept while the peer is lost
    P msg:<id>            hash: d (blob), r (mailboxes referring to it): a
                          message kept for several lost peers is stored once
    P seq                 counter for message ids
    P tok:<token>         string: the peer a resume token belongs to
    P room:<room>         hash: pid -> member blob
    P rooms, P peers      sets, for the metrics
    P lost                zset: pid -> resume deadline (unix seconds)
    P alive:<node>        heartbeat, expires after the node TTL
    P nodes               set: nodes that have not been reaped
    P node:<node>:peers   set: the peers that node holds
    P inbox:<node>        stream: deliveries for that node's peers, what one
                          script sent there as one entry: fields p
                          (comma-separated pids), s (size), d (blob) per
                          message, in order; or c (a control word) and p
    P skip:<node>         hash: pid -> stream id; entries up to that id were
                          already moved elsewhere for that pid

Lifetimes. Every key has an expiry or goes with its owner. A live peer's
keys (its record, room list, token) and its rooms live ``ARGV[5]`` ms and its
node's heartbeat refreshes them, a slice of its peers per beat; a lost
peer's keys, its mailbox and the messages in it live until its resume
deadline plus :data:`SLACK_MS`; the shared sets and a node's inbox are
refreshed by every heartbeat. So a cluster whose nodes all stopped leaves
nothing behind for good.

Member records and messages are stored as blobs made by :func:`pack`; the
scripts never look inside them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson

# -- stored blobs -------------------------------------------------------------

# JSON, with bytes (anywhere in the payload) as {"\u0000b": base64}. A payload
# that itself holds a key starting with NUL is written in the escaped form
# ("e"), where every such key gets one more NUL, so nothing can collide.

_MARK = "\x00b"
_MARK_JSON = '"\\u0000b"'
_MARK_BYTES = _MARK_JSON.encode()


def pack(value: Any) -> bytes:
    """Encode a JSON value that may hold bytes.

    orjson first (several times faster); the stdlib for what orjson refuses
    (integers past 64 bits, lone surrogates) and for payloads that need the
    escaped form.
    """
    marks = 0

    def fast_default(obj: Any) -> Any:
        nonlocal marks
        if isinstance(obj, (bytes, bytearray, memoryview)):
            marks += 1
            return {_MARK: base64.b64encode(obj).decode("ascii")}
        raise TypeError(f"cannot encode {type(obj).__name__}")

    try:
        raw = orjson.dumps(value, default=fast_default)
    except (orjson.JSONEncodeError, TypeError):
        raw = None
    if raw is not None and raw.count(_MARK_BYTES) == marks:
        return b"j" + raw
    marks = 0

    def default(obj: Any) -> Any:
        nonlocal marks
        if isinstance(obj, (bytes, bytearray, memoryview)):
            marks += 1
            return {_MARK: base64.b64encode(obj).decode("ascii")}
        raise TypeError(f"cannot encode {type(obj).__name__}")

    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=default)
    if text.count(_MARK_JSON) == marks:
        return b"j" + text.encode("utf-8", "surrogatepass")
    text = json.dumps(_escape(value), separators=(",", ":"), ensure_ascii=False, default=default)
    return b"e" + text.encode("utf-8", "surrogatepass")


def _escape(value: Any) -> Any:
    if isinstance(value, dict):
        return {("\x00" + k if k.startswith("\x00") else k): _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _plain_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _MARK in obj:
        return base64.b64decode(obj[_MARK])
    return obj


def _escaped_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _MARK in obj:
        return base64.b64decode(obj[_MARK])
    return {(k.removeprefix("\x00")): v for k, v in obj.items()}


def holds_bytes(blob: bytes) -> bool | None:
    """Whether a stored blob holds bytes; None when only decoding tells (the escaped form)."""
    if blob[:1] != b"j":
        return None
    return _MARK_BYTES in blob


def unpack(blob: bytes) -> Any:
    if blob[:1] == b"j" and _MARK_BYTES not in blob:
        try:
            return orjson.loads(blob[1:])  # a copy, yet faster than orjson on a memoryview
        except orjson.JSONDecodeError:
            pass  # NaN, lone surrogates: the stdlib reads them
    text = blob[1:].decode("utf-8", "surrogatepass")
    hook = _plain_hook if blob[:1] == b"j" else _escaped_hook
    return json.loads(text, object_hook=hook)


def mail_item(item: bytes) -> tuple[int, bytes]:
    """Split a mailbox entry into its size and blob."""
    size, _, blob = item.partition(b"|")
    return int(size), blob


# -- scripts ------------------------------------------------------------------

ENTRY_BYTES = 1024 * 1024
"""An inbox entry holds messages up to about this many bytes (one more at most);
a node's inbox read stops at the same bound, so what one read hands to
local connections stays well under a websocket's outbound bound (8 MiB)."""

INBOX_MAX_ENTRIES = 256
"""A node's inbox holds at most this many entries (each ~1 MiB or 300 messages
at most); deliveries to a node that far behind are refused (``unavailable``)
rather than kept without bound or dropped."""

SLACK_MS = 60_000
"""How long a lost peer's keys outlive its resume deadline: time for a reaper to act."""

PRELUDE = r"""
local P = ARGV[1]
local MAXN = tonumber(ARGV[2])
local MAXB = tonumber(ARGV[3])
local ME = ARGV[4]
local LIVE = tonumber(ARGV[5])
local SLACK = """ + str(SLACK_MS) + r"""

local function pk(pid) return P .. 'peer:' .. pid end
local function roomsk(pid) return P .. 'peer:' .. pid .. ':rooms' end
local function roomk(room) return P .. 'room:' .. room end
local function mboxk(pid) return P .. 'mbox:' .. pid end
local function inboxk(node) return P .. 'inbox:' .. node end
local function msgk(id) return P .. 'msg:' .. id end

local function parse_id(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end

local function id_le(x, y)
  local a1, b1 = parse_id(x)
  local a2, b2 = parse_id(y)
  return a1 < a2 or (a1 == a2 and b1 <= b2)
end

-- A set (or zset) shared by the cluster: created with an expiry, refreshed by heartbeats.
local function shared(key)
  redis.call('PEXPIRE', key, LIVE)
end

local NOW = nil
-- Milliseconds a lost peer's keys live: until its deadline, plus SLACK.
local function lost_ttl(deadline)
  if not NOW then
    local t = redis.call('TIME')
    NOW = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  local left = math.floor((tonumber(deadline) - NOW) * 1000)
  if left < 0 then left = 0 end
  return left + SLACK
end

-- Extend a key's life to at least `ttl` ms (never shorten it).
local function at_least(key, ttl)
  local left = redis.call('PTTL', key)
  if left >= 0 and left < ttl then redis.call('PEXPIRE', key, ttl) end
end

-- A live peer's keys and its rooms live LIVE ms more.
local function live(pid, tok)
  redis.call('PEXPIRE', pk(pid), LIVE)
  redis.call('PEXPIRE', roomsk(pid), LIVE)
  if tok then redis.call('PEXPIRE', P .. 'tok:' .. tok, LIVE) end
  for _, room in ipairs(redis.call('LRANGE', roomsk(pid), 0, -1)) do
    at_least(roomk(room), LIVE)
  end
end

-- Messages kept for lost peers. One blob handed to several mailboxes within
-- one script is stored once (Lua interns strings: the lookup is by hash).
local STORED = {}
local function ref(blob, ttl)
  local m = STORED[blob]
  if not m then
    local id = redis.call('INCR', P .. 'seq')
    redis.call('PEXPIRE', P .. 'seq', LIVE)
    m = {id = id, ttl = ttl}
    STORED[blob] = m
    redis.call('HSET', msgk(id), 'd', blob, 'r', 1)
    redis.call('PEXPIRE', msgk(id), ttl)
  else
    redis.call('HINCRBY', msgk(m.id), 'r', 1)
    if ttl > m.ttl then
      m.ttl = ttl
      redis.call('PEXPIRE', msgk(m.id), ttl)
    end
  end
  return m.id
end

local function unref(id)
  if redis.call('HINCRBY', msgk(id), 'r', -1) <= 0 then redis.call('DEL', msgk(id)) end
end

local function split_item(item)
  local size, id = string.match(item, '^(%d+)|(%d+)$')
  return tonumber(size), id
end

-- Empty a peer's mailbox, dropping its references.
local function drop_box(pid)
  for _, item in ipairs(redis.call('LRANGE', mboxk(pid), 0, -1)) do
    local _, id = split_item(item)
    unref(id)
  end
  redis.call('DEL', mboxk(pid))
end

-- Take a peer's mailbox: {"<size>|<blob>", ...} in order, and how many
-- had expired meanwhile.
local function take_box(pid)
  local out, gone = {}, 0
  for _, item in ipairs(redis.call('LRANGE', mboxk(pid), 0, -1)) do
    local size, id = split_item(item)
    local blob = redis.call('HGET', msgk(id), 'd')
    if blob then table.insert(out, size .. '|' .. blob) else gone = gone + 1 end
    unref(id)
  end
  redis.call('DEL', mboxk(pid))
  return out, gone
end

-- Keep a message for a lost peer: bounded, oldest dropped and counted.
local function mail(pid, size, blob, deadline)
  local key = pk(pid)
  if size > MAXB then
    redis.call('HINCRBY', key, 'md', 1)
    return
  end
  local ttl = lost_ttl(deadline)
  local box = mboxk(pid)
  redis.call('RPUSH', box, size .. '|' .. ref(blob, ttl))
  redis.call('PEXPIRE', box, ttl)
  local bytes = redis.call('HINCRBY', key, 'mb', size)
  local n = redis.call('LLEN', box)
  local dropped = 0
  while n > MAXN or bytes > MAXB do
    local old_size, id = split_item(redis.call('LPOP', box))
    unref(id)
    bytes = bytes - old_size
    n = n - 1
    dropped = dropped + 1
  end
  if dropped > 0 then
    redis.call('HSET', key, 'mb', bytes)
    redis.call('HINCRBY', key, 'md', dropped)
  end
end

-- Messages on their way to other nodes' peers. What one script sends to
-- one node is one inbox entry (fields p, s, d repeated per message, in
-- order), written by flush_posts() before the script returns.
local POSTS, POST_BYTES, POST_ORDER = {}, {}, {}
local POST_FIELDS = 1800  -- 300 messages an entry at most (Lua's unpack limit)
local POST_MAX_BYTES = """ + str(ENTRY_BYTES) + r"""
local INBOX_MAX = """ + str(INBOX_MAX_ENTRIES) + r"""

-- Append one entry to a node's inbox; the first in an empty inbox wakes
-- that node's reader (it waits for a message on the channel named like the
-- inbox once it found the inbox empty).
local function append(node, ...)
  local inbox = inboxk(node)
  redis.call('XADD', inbox, '*', ...)
  redis.call('PEXPIRE', inbox, LIVE)
  if redis.call('XLEN', inbox) == 1 then redis.call('PUBLISH', inbox, '') end
end

local function flush_node(node)
  local q = POSTS[node]
  if not q then return end
  POSTS[node] = nil
  POST_BYTES[node] = 0
  append(node, unpack(q))
end

local function flush_posts()
  for _, node in ipairs(POST_ORDER) do flush_node(node) end
  POST_ORDER = {}
end

-- Send a message to a node's inbox for `pids`, counting it for each.
local function post(node, pids, size, blob)
  local q = POSTS[node]
  if not q then
    q = {}
    POSTS[node] = q
    POST_BYTES[node] = 0
    table.insert(POST_ORDER, node)
  end
  local n = #q
  q[n + 1], q[n + 2], q[n + 3], q[n + 4], q[n + 5], q[n + 6] =
    'p', table.concat(pids, ','), 's', size, 'd', blob
  for _, pid in ipairs(pids) do redis.call('HINCRBY', pk(pid), 'pn', 1) end
  POST_BYTES[node] = POST_BYTES[node] + tonumber(size)
  if n + 6 >= POST_FIELDS or POST_BYTES[node] >= POST_MAX_BYTES then flush_node(node) end
end

local function control(node, word, pid)
  flush_node(node)  -- after what this script sent there already
  append(node, 'c', word, 'p', pid)
end

-- Call fn(pids, size, blob) for each message of an inbox entry, in order.
-- Returns the control word and its pid when the entry is one.
local function messages(flat, fn)
  if flat[1] == 'c' then return flat[2], flat[4] end
  for j = 1, #flat, 6 do fn(flat[j + 1], tonumber(flat[j + 3]), flat[j + 5]) end
  return nil
end

-- Send one message on to wherever its peer is now. A peer held by this
-- node is appended to `here` (or to this node's inbox when `here` is nil).
-- `took`: the message was just taken from an inbox entry counted for it.
local function route(pid, size, blob, here, took)
  local rec = redis.call('HMGET', pk(pid), 'node', 'lost')
  local node, lost = rec[1], rec[2]
  if not node then return end
  if took then redis.call('HINCRBY', pk(pid), 'pn', -1) end
  if lost then
    mail(pid, size, blob, lost)
  elseif node == ME and here then
    table.insert(here, pid)
  else
    post(node, {pid}, size, blob)
  end
end

-- Hand every message for `pid` still waiting in `node`'s inbox to `take`,
-- in order, and mark them so that node's reader skips them for `pid`. Reads
-- nothing when none waits, and stops at the last one that does.
local function move_pending(node, pid, take)
  local want = tonumber(redis.call('HGET', pk(pid), 'pn') or '0')
  if want <= 0 then return end
  local skipk = P .. 'skip:' .. node
  local skip = redis.call('HGET', skipk, pid)
  local last, found, from = nil, 0, '-'
  while found < want do
    local page = redis.call('XRANGE', inboxk(node), from, '+', 'COUNT', 256)
    for _, e in ipairs(page) do
      local id = e[1]
      if not (skip and id_le(id, skip)) then
        messages(e[2], function(pids, size, blob)
          for p in string.gmatch(pids, '[^,]+') do
            if p == pid then
              take(size, blob)
              last = id
              found = found + 1
            end
          end
        end)
      end
    end
    if #page < 256 then break end
    from = '(' .. page[#page][1]
  end
  redis.call('HSET', pk(pid), 'pn', 0)
  if last then
    redis.call('HSET', skipk, pid, last)
    redis.call('PEXPIRE', skipk, LIVE)
  end
end

-- Mark a peer lost (its connection or its node is gone) until `deadline`:
-- its keys now live until then (plus SLACK), and its rooms at least as long.
local function mark_lost(pid, deadline)
  local key = pk(pid)
  drop_box(pid)
  redis.call('HSET', key, 'lost', deadline, 'mb', 0, 'md', 0)
  redis.call('ZADD', P .. 'lost', deadline, pid)
  shared(P .. 'lost')
  local ttl = lost_ttl(deadline)
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', roomsk(pid), ttl)
  local tok = redis.call('HGET', key, 'tok')
  if tok then redis.call('PEXPIRE', P .. 'tok:' .. tok, ttl) end
  for _, room in ipairs(redis.call('LRANGE', roomsk(pid), 0, -1)) do
    at_least(roomk(room), ttl)
  end
end

-- The connection on this node that a resume elsewhere took the peer from
-- (token `tok`) ended at `deadline`: should that resume fail, the peer is
-- lost from then, not given back (see RELEASE).
local function claimed_end(pid, tok, deadline)
  if tok == '' then return end
  local c = redis.call('HMGET', pk(pid), 'cn', 'ct', 'cl')
  if c[1] == ME and c[2] == tok and not c[3] then redis.call('HSET', pk(pid), 'cl', deadline) end
end

local function remove_from_room(room, pid)
  local rk = roomk(room)
  if redis.call('HDEL', rk, pid) == 0 then return nil end
  redis.call('LREM', roomsk(pid), 0, room)
  local remaining = redis.call('HKEYS', rk)
  if #remaining == 0 then redis.call('SREM', P .. 'rooms', room) end
  return remaining
end
"""

REGISTER = r"""
local pid, tok = ARGV[6], ARGV[7]
drop_box(pid)
redis.call('DEL', pk(pid), roomsk(pid))
redis.call('HSET', pk(pid), 'tok', tok, 'node', ME)
redis.call('PEXPIRE', pk(pid), LIVE)
redis.call('SET', P .. 'tok:' .. tok, pid, 'PX', LIVE)
redis.call('SADD', P .. 'peers', pid)
shared(P .. 'peers')
redis.call('SADD', P .. 'node:' .. ME .. ':peers', pid)
shared(P .. 'node:' .. ME .. ':peers')
return 1
"""

ROTATE = r"""
local pid, tok = ARGV[6], ARGV[7]
local old = redis.call('HGET', pk(pid), 'tok')
if not old then return 0 end
redis.call('DEL', P .. 'tok:' .. old)
redis.call('HSET', pk(pid), 'tok', tok)
local ttl = redis.call('PTTL', pk(pid))
if ttl <= 0 then ttl = LIVE end
redis.call('SET', P .. 'tok:' .. tok, pid, 'PX', ttl)
return 1
"""

# ARGV[6] pid, ARGV[7] deadline, ARGV[8] the resume token the lost connection
# knew ('' for any), ARGV[9] n, then n (size, blob) pairs that this node had
# already taken from its inbox for the peer. Does nothing (0) when the peer is
# not this node's, is lost already, or has another token now (it was resumed
# since: the connection that was lost is not the one it has); the messages
# taken for it then go on to wherever it is now rather than vanish.
LOSE = r"""
local pid = ARGV[6]
local tok = ARGV[8]
local n = tonumber(ARGV[9])
local rec = redis.call('HMGET', pk(pid), 'node', 'lost', 'tok')
if rec[1] ~= ME or rec[2] or (tok ~= '' and rec[3] ~= tok) then
  claimed_end(pid, tok, ARGV[7])
  for j = 0, n - 1 do
    route(pid, tonumber(ARGV[10 + 2 * j]), ARGV[11 + 2 * j], nil)
  end
  flush_posts()
  return 0
end
local deadline = ARGV[7]
mark_lost(pid, deadline)
for j = 0, n - 1 do
  mail(pid, tonumber(ARGV[10 + 2 * j]), ARGV[11 + 2 * j], deadline)
end
move_pending(ME, pid, function(size, blob) mail(pid, size, blob, deadline) end)
return 1
"""

# ARGV[6] used token, ARGV[7] new token. Returns false, or
# {pid, rooms, own member blob per room, kept items, dropped, its resume
# deadline ('' when it was not lost), the node that held it}: the last two
# are what RELEASE needs should the resume fail.
RESUME = r"""
local tk = P .. 'tok:' .. ARGV[6]
local pid = redis.call('GET', tk)
if not pid then return false end
local key = pk(pid)
local rec = redis.call('HMGET', key, 'node', 'lost', 'exp', 'md', 'kicked')
if not rec[1] or rec[3] or rec[5] then return false end
redis.call('DEL', tk)
redis.call('SET', P .. 'tok:' .. ARGV[7], pid, 'PX', LIVE)
local kept, gone = take_box(pid)
local old = rec[1]
redis.call('HDEL', key, 'cn', 'ct', 'cl')
if not rec[2] and old ~= ME then
  -- Still held by another node (which may not have noticed it is gone):
  -- take what waits there for it, and tell that node to let go. Should
  -- this resume fail, RELEASE gives it back there (cn, ct).
  move_pending(old, pid, function(size, blob) table.insert(kept, size .. '|' .. blob) end)
  control(old, 'evict', pid)
  redis.call('HSET', key, 'cn', old, 'ct', ARGV[6])
end
redis.call('HSET', key, 'tok', ARGV[7], 'node', ME, 'mb', 0, 'md', 0)
redis.call('HDEL', key, 'lost')
redis.call('ZREM', P .. 'lost', pid)
if old ~= ME then
  redis.call('SREM', P .. 'node:' .. old .. ':peers', pid)
  redis.call('SADD', P .. 'node:' .. ME .. ':peers', pid)
  shared(P .. 'node:' .. ME .. ':peers')
end
live(pid, nil)
local rooms = redis.call('LRANGE', roomsk(pid), 0, -1)
local members = {}
for i, room in ipairs(rooms) do
  members[i] = redis.call('HGET', roomk(room), pid) or ''
end
return {pid, rooms, members, kept, tonumber(rec[4] or '0') + gone, rec[2] or '', old}
"""

# ARGV[6] pid, ARGV[7] the token a resume that failed was given, ARGV[8] the
# token to give back, ARGV[9] its resume deadline ('' when it was not lost:
# its connection here, or on the node in cn, was open), ARGV[10] its dropped
# count, ARGV[11] n, then n (size, blob) pairs: its mail, in order. Puts the
# peer back as it was before the resume; what still waits for it in this
# node's inbox follows its mail. A peer taken from another node's open
# connection goes back to that node (told 'adopt' before its mail), or is
# lost from when that connection ended (cl). Returns 0 (the peer is no longer
# this node's under that token: the mail goes on to wherever it is), -1 (it
# was kicked meanwhile: no token comes back), 1, or 2 (back on node cn).
RELEASE = r"""
local pid = ARGV[6]
local key = pk(pid)
local n = tonumber(ARGV[11])
local rec = redis.call('HMGET', key, 'node', 'tok', 'kicked', 'cn', 'cl')
if rec[1] == ME and rec[3] then
  -- Kept, marked, until its deadline (no rooms, no token): a connection that
  -- still speaks for it elsewhere may not join it back.
  if ARGV[9] ~= '' then mark_lost(pid, ARGV[9]) end
  return -1
end
if rec[1] ~= ME or rec[2] ~= ARGV[7] then
  for j = 0, n - 1 do
    route(pid, tonumber(ARGV[12 + 2 * j]), ARGV[13 + 2 * j], nil)
  end
  flush_posts()
  return 0
end
redis.call('DEL', P .. 'tok:' .. ARGV[7])
redis.call('HSET', key, 'tok', ARGV[8])
redis.call('SET', P .. 'tok:' .. ARGV[8], pid, 'PX', LIVE)
redis.call('HDEL', key, 'cn', 'ct', 'cl')
local deadline = ARGV[9]
local back = rec[4]
if deadline == '' and back and back ~= ME then
  if rec[5] then
    deadline = rec[5]
  else
    local later = {}
    move_pending(ME, pid, function(size, blob) table.insert(later, {size, blob}) end)
    redis.call('HSET', key, 'node', back)
    redis.call('SREM', P .. 'node:' .. ME .. ':peers', pid)
    redis.call('SADD', P .. 'node:' .. back .. ':peers', pid)
    shared(P .. 'node:' .. back .. ':peers')
    live(pid, ARGV[8])
    control(back, 'adopt', pid)
    for j = 0, n - 1 do
      post(back, {pid}, tonumber(ARGV[12 + 2 * j]), ARGV[13 + 2 * j])
    end
    for _, item in ipairs(later) do post(back, {pid}, item[1], item[2]) end
    flush_posts()
    return 2
  end
end
if deadline == '' then
  live(pid, ARGV[8])
  return 1
end
mark_lost(pid, deadline)
redis.call('HSET', key, 'md', ARGV[10])
for j = 0, n - 1 do
  mail(pid, tonumber(ARGV[12 + 2 * j]), ARGV[13 + 2 * j], deadline)
end
move_pending(ME, pid, function(size, blob) mail(pid, size, blob, deadline) end)
return 1
"""

# ARGV[6] now. Lost peers past their deadline, each returned once.
EXPIRED = r"""
local gone = redis.call('ZRANGEBYSCORE', P .. 'lost', '-inf', ARGV[6], 'LIMIT', 0, 500)
for _, pid in ipairs(gone) do
  redis.call('ZREM', P .. 'lost', pid)
  local tok = redis.call('HGET', pk(pid), 'tok')
  if tok then redis.call('DEL', P .. 'tok:' .. tok) end
  if redis.call('EXISTS', pk(pid)) == 1 then redis.call('HSET', pk(pid), 'exp', 1) end
end
return gone
"""

# ARGV[6] pid, ARGV[7] '1' when the peer's expiry is being finished (any
# node may do that), else only the node holding the peer may forget it;
# ARGV[8] the resume token the departing connection knew ('' for any): a
# peer with another token now was resumed since and is not forgotten.
# Returns false, or {{room, remaining pids}, ...}.
FORGET = r"""
local pid = ARGV[6]
local key = pk(pid)
local rec = redis.call('HMGET', key, 'node', 'exp', 'tok')
if not rec[1] then return false end
if ARGV[7] == '1' then
  if not rec[2] then return false end
elseif rec[1] ~= ME then
  if ARGV[8] ~= '' then
    local t = redis.call('TIME')
    claimed_end(pid, ARGV[8], tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
  end
  return false
end
if ARGV[8] ~= '' and rec[3] ~= ARGV[8] then return false end
local out = {}
for _, room in ipairs(redis.call('LRANGE', roomsk(pid), 0, -1)) do
  local remaining = remove_from_room(room, pid)
  if remaining then table.insert(out, {room, remaining}) end
end
if rec[3] then redis.call('DEL', P .. 'tok:' .. rec[3]) end
drop_box(pid)
redis.call('DEL', key, roomsk(pid))
redis.call('SREM', P .. 'peers', pid)
redis.call('SREM', P .. 'node:' .. rec[1] .. ':peers', pid)
redis.call('ZREM', P .. 'lost', pid)
return out
"""

# ARGV[6] room, ARGV[7] pid, ARGV[8] member blob, ARGV[9] capacity.
# Returns {1, others} (already a member), {-1} (full), {-2} (the peer was
# kicked) or {0, others}, where others is the room's flat pid/blob list.
JOIN = r"""
local rk = roomk(ARGV[6])
local pid = ARGV[7]
if redis.call('HEXISTS', pk(pid), 'kicked') == 1 then return {-2} end
if redis.call('HEXISTS', rk, pid) == 1 then
  return {1, redis.call('HGETALL', rk)}
end
if redis.call('HLEN', rk) >= tonumber(ARGV[9]) then return {-1} end
local others = redis.call('HGETALL', rk)
redis.call('HSET', rk, pid, ARGV[8])
if redis.call('PTTL', rk) < LIVE then redis.call('PEXPIRE', rk, LIVE) end
redis.call('SADD', P .. 'rooms', ARGV[6])
shared(P .. 'rooms')
if redis.call('EXISTS', pk(pid)) == 1 then
  redis.call('RPUSH', roomsk(pid), ARGV[6])
  local ttl = redis.call('PTTL', pk(pid))
  if ttl <= 0 then ttl = LIVE end
  redis.call('PEXPIRE', roomsk(pid), ttl)
end
return {0, others}
"""

# ARGV[6] room, ARGV[7] pid, ARGV[8] its new member blob. Returns false
# (it is not in the room) or the room's pids.
UPDATE_META = r"""
local rk = roomk(ARGV[6])
if redis.call('HEXISTS', rk, ARGV[7]) == 0 then return false end
redis.call('HSET', rk, ARGV[7], ARGV[8])
return redis.call('HKEYS', rk)
"""

# ARGV[6] room, ARGV[7] pid. Returns false, or the pids left in the room.
LEAVE = r"""
local remaining = remove_from_room(ARGV[6], ARGV[7])
if not remaining then return false end
return remaining
"""

# ARGV[6] number of blobs B, ARGV[7..6+B] the blobs, then (pid, blob index,
# size, room) quadruples; room '' delivers whatever the peer's rooms, else
# only to a member of that room (a node's view of the other nodes' members
# may lag: the script has the last word). Lost peers' messages go to their
# mailbox, other nodes' peers' to that node's inbox (one entry per node for
# what this call sends there). Returns the 1-based positions of the
# deliveries whose peer this node holds (the caller did not know it as
# local: it is being lost), or {-1} and does nothing when a destination
# node's inbox already holds INBOX_MAX entries (that node is far behind).
DELIVER = r"""
local nb = tonumber(ARGV[6])
local out = {}
local groups, order = {}, {}
local run = nil
local function flush()
  for _, node in ipairs(order) do
    local g = groups[node]
    post(node, g.p, g.s, ARGV[6 + g.b])
  end
  groups, order = {}, {}
end
-- First where each goes: a node whose inbox is full refuses the whole call.
local recs, checked = {}, {}
for i = 7 + nb, #ARGV, 4 do
  local pid, room = ARGV[i], ARGV[i + 3]
  local rec = redis.call('HMGET', pk(pid), 'node', 'lost')
  if rec[1] and not (room == '' or redis.call('HEXISTS', roomk(room), pid) == 1) then
    rec[1] = false
  end
  table.insert(recs, rec)
  local node = rec[1]
  if node and not rec[2] and node ~= ME and not checked[node] then
    checked[node] = true
    if redis.call('XLEN', inboxk(node)) >= INBOX_MAX then return {-1} end
  end
end
local k = 0
for i = 7 + nb, #ARGV, 4 do
  local pid, b, size = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  k = k + 1
  if b ~= run then
    flush()
    run = b
  end
  local node, lost = recs[k][1], recs[k][2]
  if node then
    if lost then
      mail(pid, tonumber(size), ARGV[6 + b], lost)
    elseif node == ME then
      table.insert(out, k)
    else
      local g = groups[node]
      if not g then
        g = {p = {}, s = size, b = b}
        groups[node] = g
        table.insert(order, node)
      end
      table.insert(g.p, pid)
    end
  end
end
flush()
flush_posts()
return out
"""

# ARGV[6] count, ARGV[7] bytes: takes up to count entries from this node's
# inbox while their messages' sizes add up to no more than bytes (one entry
# at least). Returns
# {entries left, {{'d', pids here, blob, size} | {'c', word, pid}, ...}}; messages
# for peers that are no longer here go on to where they are now.
CLAIM = r"""
local inbox = inboxk(ME)
local skipk = P .. 'skip:' .. ME
local budget = tonumber(ARGV[7])
local out = {}
local n, bytes = 0, 0
local skips = redis.call('HLEN', skipk) > 0
for _, e in ipairs(redis.call('XRANGE', inbox, '-', '+', 'COUNT', tonumber(ARGV[6]))) do
  local size = 0
  if e[2][1] ~= 'c' then
    for j = 4, #e[2], 6 do size = size + tonumber(e[2][j]) end
  end
  if n > 0 and bytes + size > budget then break end
  bytes = bytes + size
  local id = e[1]
  redis.call('XDEL', inbox, id)
  n = n + 1
  local word, cpid = messages(e[2], function(pids, size, blob)
    local here = {}
    for pid in string.gmatch(pids, '[^,]+') do
      local skip = skips and redis.call('HGET', skipk, pid)
      if not (skip and id_le(id, skip)) then
        route(pid, size, blob, here, true)
      end
    end
    if #here > 0 then
      table.insert(out, {'d', table.concat(here, ','), blob, size})
    end
  end)
  if word then table.insert(out, {'c', word, cpid}) end
end
flush_posts()
local left = redis.call('XLEN', inbox)
if left == 0 then redis.call('DEL', skipk) end
return {left, out}
"""

# ARGV[6] heartbeat TTL (ms), ARGV[7] now, ARGV[8] resume grace (s),
# ARGV[9] cursor over this node's peers, ARGV[10] how many to refresh.
# Refreshes this node's heartbeat, the shared keys' expiry and one slice of
# its peers' keys, and reaps every node whose heartbeat has expired: its
# peers become lost (resume grace from now) and what waited in its inbox
# goes on to them. Returns {1 if this node was not in the node set (first
# beat, Redis restarted, or reaped while alive), nodes reaped, next cursor}.
SWEEP = r"""
redis.call('SET', P .. 'alive:' .. ME, '1', 'PX', ARGV[6])
local fresh = redis.call('SADD', P .. 'nodes', ME)
local held_here = P .. 'node:' .. ME .. ':peers'
for _, key in ipairs({P .. 'nodes', P .. 'rooms', P .. 'peers', P .. 'lost', P .. 'seq',
                      held_here, inboxk(ME), P .. 'skip:' .. ME}) do
  shared(key)
end
local scan = redis.call('SSCAN', held_here, ARGV[9], 'COUNT', tonumber(ARGV[10]))
for _, pid in ipairs(scan[2]) do
  local rec = redis.call('HMGET', pk(pid), 'node', 'lost', 'tok')
  if rec[1] == ME and not rec[2] then live(pid, rec[3]) end
end
local deadline = tonumber(ARGV[7]) + tonumber(ARGV[8])
local reaped = 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if node ~= ME and redis.call('EXISTS', P .. 'alive:' .. node) == 0 then
    redis.call('SREM', P .. 'nodes', node)
    local held = P .. 'node:' .. node .. ':peers'
    for _, pid in ipairs(redis.call('SMEMBERS', held)) do
      local rec = redis.call('HMGET', pk(pid), 'node', 'lost')
      if rec[1] == node and not rec[2] then mark_lost(pid, deadline) end
    end
    local skipk = P .. 'skip:' .. node
    for _, e in ipairs(redis.call('XRANGE', inboxk(node), '-', '+')) do
      local id = e[1]
      messages(e[2], function(pids, size, blob)
        for pid in string.gmatch(pids, '[^,]+') do
          local skip = redis.call('HGET', skipk, pid)
          if not (skip and id_le(id, skip)) then
            route(pid, size, blob, nil, true)
          end
        end
      end)
    end
    redis.call('DEL', inboxk(node), skipk, held)
    reaped = reaped + 1
  end
end
flush_posts()
return {fresh, reaped, scan[1]}
"""

# ARGV[6] room capacity, ARGV[7] n, then per peer: pid, token, number of
# rooms R, then R (room, member blob) pairs. Writes this node's own peers
# back after Redis was unreachable (or restarted empty, or reaped this node
# while it lived). A peer is put back in a room it is not in (any more)
# only while the room has a free seat. Returns {evicted pids, {pid, kept
# items}..., {pid, room}... refused}: peers now held elsewhere, peers taken
# back with the mail they got while marked lost, seats the room no longer had.
RESTORE = r"""
local cap = tonumber(ARGV[6])
local evicted, back, refused = {}, {}, {}
local i = 8
for _ = 1, tonumber(ARGV[7]) do
  local pid, tok, nr = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local key = pk(pid)
  local rec = redis.call('HMGET', key, 'node', 'lost', 'tok')
  if rec[1] and rec[1] ~= ME then
    table.insert(evicted, pid)
  else
    if rec[2] then
      local kept = take_box(pid)
      table.insert(back, {pid, kept})
      redis.call('HDEL', key, 'lost', 'exp')
      redis.call('ZREM', P .. 'lost', pid)
    end
    if rec[3] and rec[3] ~= tok then redis.call('DEL', P .. 'tok:' .. rec[3]) end
    redis.call('HSET', key, 'tok', tok, 'node', ME, 'mb', 0, 'md', 0)
    redis.call('SET', P .. 'tok:' .. tok, pid, 'PX', LIVE)
    redis.call('SADD', P .. 'peers', pid)
    shared(P .. 'peers')
    redis.call('SADD', P .. 'node:' .. ME .. ':peers', pid)
    shared(P .. 'node:' .. ME .. ':peers')
    local had = {}
    for _, room in ipairs(redis.call('LRANGE', roomsk(pid), 0, -1)) do had[room] = true end
    local want = {}
    for j = 0, nr - 1 do
      local room, blob = ARGV[i + 3 + 2 * j], ARGV[i + 4 + 2 * j]
      local rk = roomk(room)
      if redis.call('HEXISTS', rk, pid) == 1 or redis.call('HLEN', rk) < cap then
        want[room] = true
        redis.call('HSET', rk, pid, blob)
        redis.call('SADD', P .. 'rooms', room)
        shared(P .. 'rooms')
        if not had[room] then redis.call('RPUSH', roomsk(pid), room) end
      else
        table.insert(refused, {pid, room})
      end
    end
    for room in pairs(had) do
      if not want[room] then remove_from_room(room, pid) end
    end
    live(pid, tok)
  end
  i = i + 3 + 2 * nr
end
return {evicted, back, refused}
"""

SCRIPTS = {
    "register": REGISTER,
    "rotate": ROTATE,
    "lose": LOSE,
    "resume": RESUME,
    "release": RELEASE,
    "expired": EXPIRED,
    "forget": FORGET,
    "join": JOIN,
    "leave": LEAVE,
    "update_meta": UPDATE_META,
    "deliver": DELIVER,
    "claim": CLAIM,
    "sweep": SWEEP,
    "restore": RESTORE,
}
"""Script bodies by name; the backend prepends :data:`PRELUDE` to each."""
