"""Room state shared through Redis: several nodes act as one server.

Every operation is one Lua script (``redis_scripts``), so each decision is
atomic cluster-wide. Besides the shared state, each node keeps a mirror of
its *own* peers (token, rooms, member record). The mirror answers questions
about local peers without a round trip, keeps local delivery going while
Redis is unreachable, and is written back when Redis returns (also after
Redis restarted empty).

Delivery. A message for a peer held by this node goes straight to the sink.
One for a peer on another node is appended to that node's inbox (a Redis
Stream); each node reads its own inbox in order and hands the messages to
its sink. The relay's path (routing, waiting on and taking from the inbox)
runs on the node's own lean connections (``redis_line``), the rest on
redis-py's pool. One for a lost peer goes to its mailbox in Redis. When a peer's
place changes (lost, resumed elsewhere, its node reaped), the script that
changes it also moves whatever still waits for it in its old inbox, so
per-sender order holds. A request whose route needs Redis while it is
unreachable fails with ``unavailable`` instead of vanishing.

Liveness. Each node refreshes ``alive:<node>`` (a key with a TTL) every
``node_ttl / 5`` seconds and, in the same script, reaps nodes whose key has
expired: their peers become lost with the resume grace, their inbox goes on
to mailboxes. ``expired`` pops lost peers from one sorted set, so each is
returned once across the cluster.

Resuming. ``resume`` claims the peer for this node in one script (its mail
taken, its token rotated); until the service calls ``attach`` or ``release``
what arrives for it waits in the claim's bounded box here, not in its old
connection. ``release`` writes the peer back in one script: its token, its
deadline, its mail (what was taken, then what came meanwhile) and its
dropped count.

Locking. Taking messages from the inbox and handing them to the sink, marking a
local peer lost and resuming one happen under one lock per node, so a
message is never handed to a connection that is being lost (it is *parked*
and goes into the mailbox first, before anything newer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import ResumeExpired, RoomFull, Unavailable, kicked, public_cause
from ..mailbox import MAX_BYTES, MAX_MESSAGES, Mailbox
from . import redis_admin, redis_scripts
from .base import Delivery, Departure, JoinResult, Member, Resumed, Sink
from .redis_line import RedisLine
from .redis_scripts import holds_bytes, pack, unpack
from .redis_scripts import mail_item as _mail_item

log = logging.getLogger("signaling")

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
CLAIM_BATCH = 500
CLAIM_BYTES = redis_scripts.ENTRY_BYTES
"""Message bytes one inbox read hands to local connections in one go (one
entry more at most, itself bounded alike): well under a websocket session's
outbound bound (8 MiB), so a backlog of large relays for one peer goes out
over several loop turns instead of one."""
LIVE_TTL = 3600.0
"""Seconds a live peer's keys last in Redis without a refresh from its node."""
REFRESH_SLICE = 200
"""Live peers whose keys one heartbeat refreshes (every one within LIVE_TTL / 4)."""
RESTORE_BATCH = 100
BLOCK_MS = 500


_CHECKED = frozenset({"signal", "relay"})
"""Events that reach a peer only while it is in the payload's room."""

POOL_CONNECTIONS = 64
"""Redis connections per node; concurrent commands past it wait their turn."""


class BackendUnavailable(Unavailable):
    """The shared state cannot be reached; the request changed nothing."""


def _member_blob(member: Member) -> bytes:
    return pack({"meta": member.meta, "webrtc": member.webrtc})


def _member(peer_id: str, blob: bytes) -> Member:
    record = unpack(blob)
    return Member(peer_id, record["meta"], bool(record["webrtc"]))


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe_url(url: str) -> str:
    """The URL without its password, for logs and health reasons."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(slots=True)
class _LocalPeer:
    token: str
    rooms: dict[str, Member] = field(default_factory=dict)  # ordered: join order


@dataclass(slots=True)
class _Claim:
    """A resume under way on this node: what its deliveries wait in, and what
    ``release`` puts back should it fail."""

    old_token: str
    lost: float | None  # its resume deadline; None: its connection was open
    node: str  # the node that held it
    box: Mailbox[Delivery]


class RedisBackend:
    """The ``Backend`` protocol over one Redis, shared by every node."""

    def __init__(
        self,
        redis_url: str,
        *,
        resume_grace: float = 15.0,
        node_ttl: float = 5.0,
        prefix: str = "signaling:",
        mailbox_messages: int = MAX_MESSAGES,
        mailbox_bytes: int = MAX_BYTES,
        node_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node_id = node_id or secrets.token_hex(8)
        self.resume_grace = resume_grace
        self.node_ttl = node_ttl
        self.clock = clock
        self._url = _safe_url(redis_url)
        # A blocking pool: past its size a command waits for a free
        # connection; redis-py's default pool raises "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=POOL_CONNECTIONS,
            timeout=max(3.0, node_ttl),
            socket_timeout=max(3.0, node_ttl),
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),  # never run a script twice
            health_check_interval=0,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        # The relay's hot path has its own connections (redis_line): one routes
        # what this node sends away, one takes from its inbox, one hears when
        # something lands in an empty inbox.
        self._lines = tuple(
            RedisLine(pool.connection_class, pool.connection_kwargs, timeout=max(3.0, node_ttl))
            for _ in range(3)
        )
        self._route_line, self._inbox_line, self._wake_line = self._lines
        self._wake = asyncio.Event()
        self._listening = False  # subscribed to the inbox's wake-ups since Redis was last up
        live_ms = int(max(LIVE_TTL, resume_grace + 2 * redis_scripts.SLACK_MS / 1000) * 1000)
        self._base_args: list[str | int] = [prefix, mailbox_messages, mailbox_bytes, self.node_id, live_ms]
        self._refresh_cursor = 0
        self._scripts = {
            name: self._redis.register_script(redis_scripts.PRELUDE + body)
            for name, body in {**redis_scripts.SCRIPTS, **redis_admin.SCRIPTS}.items()
        }
        self._mailbox_bounds = (mailbox_messages, mailbox_bytes)
        self._prefix = prefix
        self._inbox = f"{prefix}inbox:{self.node_id}".encode()
        self._sink: Sink | None = None
        self._lock = asyncio.Lock()
        self._lock_owner: asyncio.Task[Any] | None = None
        self._local: dict[str, _LocalPeer] = {}
        self._claims: dict[str, _Claim] = {}  # local peers whose resume is under way
        # room -> other nodes' peers, last seen; a room is in it once this node
        # has seen it in Redis, and only while it has a local peer in it.
        self._remote_seen: dict[str, set[str]] = {}
        self._capacity: int | None = None  # rooms' capacity, as the service last asked
        self._parked: dict[str, list[tuple[int, bytes]]] = {}
        self._losing: dict[str, int] = {}  # peers whose lose() is under way
        self._expiring: set[str] = set()
        self._unfinished: set[str] = set()  # expired, but Redis was away for their forget
        # Departures the other nodes missed while Redis was away: peer -> rooms;
        # and those Redis lost (it restarted empty), told once every node is back.
        self._left_while_down: dict[str, list[str]] = {}
        self._left_later: list[tuple[float, str, list[str]]] = []
        self._down: str | None = "not connected to Redis yet"  # public: /healthz shows it
        self._version = 0  # bumped on every change to the local mirror
        self._tasks: list[asyncio.Task[None]] = []
        self._outgoing: list[tuple[list[Delivery], asyncio.Future[list[Delivery]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._closing = False

    # -- lifecycle -------------------------------------------------------
    async def start(self, sink: Sink) -> None:
        self._sink = sink
        await self._beat()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name=f"redis-heartbeat-{self.node_id}"),
            asyncio.create_task(self._inbox_loop(), name=f"redis-inbox-{self.node_id}"),
        ]

    async def close(self) -> None:
        # The inbox reader stops at its next turn: woken now, or after the take
        # under way (not cancelled halfway through handing messages on).
        self._closing = True
        self._up.set()
        self._wake.set()
        for task in self._tasks[:1]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._flusher is not None:  # deliveries already asked for go out first
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._flusher, 2.0)
        if self._down is None:
            # Let the others reap this node now rather than after the TTL.
            with contextlib.suppress(*UNREACHABLE):
                await self._redis.delete(f"{self._prefix}alive:{self.node_id}")
        await self._redis.aclose(close_connection_pool=True)  # our own pool
        for line in self._lines:
            line.close()
        self._sink = None

    async def unavailable_reason(self) -> str | None:
        return self._down

    # -- plumbing --------------------------------------------------------
    def _mark_down(self, exc: BaseException) -> None:
        down = f"cannot reach Redis: {public_cause(exc)}"  # no host: /healthz shows it
        if self._down != down:  # the log has the details, once per change
            log.warning("redis lost at %s: %s", self._url, exc)
        self._down = down
        self._up.clear()

    def _unavailable(self) -> BackendUnavailable:
        return BackendUnavailable(
            "the shared room state (Redis) cannot be reached right now: try again shortly"
        )

    async def _run(self, name: str, *args: Any) -> Any:
        """Run one script; Redis unreachable becomes ``BackendUnavailable``."""
        return await self._call(self._scripts[name], args=[*self._base_args, *args])

    async def _run_on(self, line: RedisLine, name: str, *args: Any) -> Any:
        """``_run`` on one of the hot path's own connections."""
        script = self._scripts[name]
        return await self._call(line.evalsha, script.sha, script.script, [*self._base_args, *args])

    async def _call(self, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self._down is not None:
            raise self._unavailable()
        try:
            return await method(*args, **kwargs)
        except UNREACHABLE as exc:
            self._mark_down(exc)
            raise self._unavailable() from None

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """The node's delivery lock, re-entrant for the task holding it.

        The sink runs under it, and handing a message to a connection that
        stopped reading ends that connection there and then: the adapter's
        disconnect handler calls ``lose`` in the same task.
        """
        task = asyncio.current_task()
        if task is not None and self._lock_owner is task:
            yield
            return
        async with self._lock:
            self._lock_owner = task
            try:
                yield
            finally:
                self._lock_owner = None

    def _changed(self) -> None:
        self._version += 1

    def _drop_local(self, peer_id: str) -> _LocalPeer | None:
        local = self._local.pop(peer_id, None)
        if local is not None:
            self._changed()
            self._prune(local.rooms)
        return local

    def _prune(self, rooms: Iterable[str]) -> None:
        """Forget what was seen of rooms this node no longer has a peer in."""
        for room in rooms:
            if not any(room in peer.rooms for peer in self._local.values()):
                self._remote_seen.pop(room, None)

    # -- peers -----------------------------------------------------------
    async def register(self, peer_id: str, resume_token: str) -> None:
        self._local[peer_id] = _LocalPeer(resume_token)
        self._changed()
        with contextlib.suppress(BackendUnavailable):  # written back on recovery
            await self._run("register", peer_id, resume_token)

    async def rotate_token(self, peer_id: str, resume_token: str) -> None:
        local = self._local.get(peer_id)
        if local is not None:
            local.token = resume_token
            self._changed()
        with contextlib.suppress(BackendUnavailable):
            await self._run("rotate", peer_id, resume_token)

    def _superseded(self, peer_id: str, token: str | None) -> bool:
        """Whether this node holds the peer under another token than ``token``:
        it was resumed here since, and the caller's connection is not its own."""
        local = self._local.get(peer_id)
        return token is not None and local is not None and local.token != token

    async def lose(self, peer_id: str, deadline: float, token: str | None) -> None:
        claim = self._claims.get(peer_id)
        if claim is not None and token == claim.old_token:
            # Its old connection ended while a resume is under way here:
            # should that resume fail, the peer is a lost one.
            if claim.lost is None:
                claim.lost = deadline
            return
        if self._superseded(peer_id, token):
            return  # also while Redis is away: the resumed peer's mirror stays
        self._drop_local(peer_id)
        self._losing[peer_id] = self._losing.get(peer_id, 0) + 1
        try:
            async with self._locked():
                parked = self._parked.pop(peer_id, [])
                # The script checks the token again, atomically: a resume may
                # have landed (here or on another node) since the check above.
                args: list[Any] = [peer_id, repr(deadline), token or "", len(parked)]
                for size, blob in parked:
                    args += [size, blob]
                # Unreachable: the peer is written back as lost when Redis returns.
                with contextlib.suppress(BackendUnavailable):
                    await self._run("lose", *args)
        finally:
            left = self._losing.pop(peer_id) - 1
            if left:
                self._losing[peer_id] = left

    async def resume(self, resume_token: str, new_token: str) -> Resumed:
        async with self._locked():
            found = await self._run("resume", resume_token, new_token)
            if not found:
                raise ResumeExpired(
                    "this resume token is unknown, used or expired: join again without it"
                )
            raw_pid, rooms, members, kept, dropped, lost, node = found
            peer_id = _str(raw_pid)
            local = _LocalPeer(new_token)
            for raw_room, blob in zip(rooms, members):
                if blob:
                    local.rooms[_str(raw_room)] = _member(peer_id, blob)
            self._local[peer_id] = local
            self._claims[peer_id] = _Claim(
                resume_token, float(lost) if lost else None, _str(node), Mailbox(*self._mailbox_bounds)
            )
            # Taken from the inbox for it while a lose of its old connection
            # waited for the lock (that lose now finds a new token and does
            # nothing): older than anything kept in Redis, so they go first.
            parked = self._parked.pop(peer_id, [])
            self._changed()
        deliveries = []
        for size, blob in [*parked, *map(_mail_item, kept)]:
            event, payload = unpack(blob)
            deliveries.append(Delivery(peer_id, event, payload, size))
        return Resumed(peer_id=peer_id, rooms=list(local.rooms), kept=deliveries, dropped=int(dropped))

    async def expired(self, now: float) -> list[str]:
        try:
            gone = [_str(pid) for pid in await self._run("expired", repr(now))]
        except BackendUnavailable:
            return []
        # Redis hands each one out once: those whose forget could not reach it
        # come out again here, or their records would stay for good.
        again = [pid for pid in self._unfinished if pid not in gone]
        self._unfinished.clear()
        gone = again + gone
        self._expiring.update(gone)
        return gone

    async def forget(self, peer_id: str, token: str | None = None) -> list[Departure]:
        claim = self._claims.get(peer_id)
        if claim is not None and token is not None and token == claim.old_token:
            # Its old connection left while a resume is under way here: should
            # that resume fail, the peer goes at the next reap.
            claim.lost = self.clock()
            return []
        if self._superseded(peer_id, token):
            return []  # resumed here since: not the caller's to forget, Redis up or not
        self._claims.pop(peer_id, None)
        local = self._drop_local(peer_id)
        self._parked.pop(peer_id, None)
        force = peer_id in self._expiring
        self._expiring.discard(peer_id)
        try:
            found = await self._run("forget", peer_id, "1" if force else "0", token or "")
        except BackendUnavailable:
            if force:
                self._unfinished.add(peer_id)
            if local is None:
                return []
            # Tell the local ones now; the others hear of it once Redis is back.
            self._left_while_down[peer_id] = list(local.rooms)
            return [
                Departure(room, peer_id, [pid for pid in self._room_locals(room) if pid != peer_id])
                for room in local.rooms
            ]
        if not found:
            return []
        return [
            Departure(_str(room), peer_id, [_str(pid) for pid in remaining])
            for room, remaining in found
        ]

    # -- rooms -----------------------------------------------------------
    def _room_locals(self, room: str) -> dict[str, Member]:
        return {
            pid: peer.rooms[room] for pid, peer in self._local.items() if room in peer.rooms
        }

    def _seen(self, room: str, pids: Iterable[str]) -> None:
        self._remote_seen[room] = {pid for pid in pids if pid not in self._local}

    def _room_is_local(self, room: str) -> bool:
        """While Redis is away: may this node decide for the room alone?

        Only for a room it has seen in Redis with no other node's peer in it:
        a room it never saw may have members elsewhere.
        """
        remote = self._remote_seen.get(room)
        return remote is not None and not remote

    async def join(self, room: str, member: Member, capacity: int) -> JoinResult:
        self._capacity = capacity
        if self._down is not None:
            return self._join_locally(room, member, capacity)
        try:
            result = await self._run("join", room, member.peer_id, _member_blob(member), capacity)
        except BackendUnavailable:
            return self._join_locally(room, member, capacity)
        status, flat = result[0], (result[1] if len(result) > 1 else [])
        if status == -1:
            raise RoomFull(f"room {room!r} already holds {capacity} peers")
        if status == -2:
            raise kicked()
        everyone = {_str(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        others = [_member(pid, blob) for pid, blob in everyone.items() if pid != member.peer_id]
        self._seen(room, everyone)
        local = self._local.get(member.peer_id)
        if local is not None and room not in local.rooms:
            local.rooms[room] = member
            self._changed()
        return JoinResult(others=others, already_member=status == 1)

    def _join_locally(self, room: str, member: Member, capacity: int) -> JoinResult:
        local = self._local.get(member.peer_id)
        if local is None or not self._room_is_local(room):
            raise self._unavailable()
        members = self._room_locals(room)
        if member.peer_id in members:
            others = [m for pid, m in members.items() if pid != member.peer_id]
            return JoinResult(others=others, already_member=True)
        if len(members) >= capacity:
            raise RoomFull(f"room {room!r} already holds {capacity} peers")
        local.rooms[room] = member
        self._changed()
        return JoinResult(others=list(members.values()), already_member=False)

    async def leave(self, room: str, peer_id: str) -> Departure | None:
        local = self._local.get(peer_id)
        if self._down is not None and local is not None and self._room_is_local(room):
            if local.rooms.pop(room, None) is None:
                return None
            self._changed()
            return Departure(room, peer_id, list(self._room_locals(room)))
        remaining = await self._run("leave", room, peer_id)
        if local is not None and local.rooms.pop(room, None) is not None:
            self._changed()
        if remaining is None:
            return None
        pids = [_str(pid) for pid in remaining]
        self._seen(room, pids)
        self._prune([room])
        return Departure(room, peer_id, pids)

    async def update_meta(self, room: str, peer_id: str, meta: dict[str, Any]) -> list[str] | None:
        local = self._local.get(peer_id)
        current = local.rooms.get(room) if local is not None else None
        if local is None or current is None:
            return None  # the requester is always this node's own peer
        member = Member(peer_id, meta, current.webrtc)
        if self._down is not None and self._room_is_local(room):
            local.rooms[room] = member
            self._changed()
            return [pid for pid in self._room_locals(room) if pid != peer_id]
        pids = await self._run("update_meta", room, peer_id, _member_blob(member))
        if pids is None:
            return None
        local.rooms[room] = member
        self._changed()
        return [_str(pid) for pid in pids if _str(pid) != peer_id]

    # -- the end of a resume -----------------------------------------------
    async def _hand(self, deliveries: list[Delivery]) -> None:
        """Hand deliveries to the sink, but those for a peer whose resume is
        under way here to its claim's box: not to the connection it replaces."""
        if self._claims:
            rest = []
            for d in deliveries:
                claim = self._claims.get(d.peer_id)
                if claim is None:
                    rest.append(d)
                else:
                    claim.box.put(d, d.size)
            deliveries = rest
        if deliveries and self._sink is not None:
            await self._sink(deliveries)

    async def attach(self, peer_id: str) -> tuple[list[Delivery], int]:
        if peer_id not in self._claims:
            return [], 0
        with contextlib.suppress(BackendUnavailable):  # unreachable: its KICK ends it later
            if await self._call(self._redis.hexists, f"{self._prefix}peer:{peer_id}", "kicked"):
                raise kicked()  # the claim stays for ``release``
        claim = self._claims.pop(peer_id, None)
        return claim.box.drain() if claim is not None else ([], 0)

    async def release(self, resumed: Resumed, old_token: str, new_token: str) -> None:
        """Put the peer back: lost with its deadline, mail and dropped count, or
        on its connection that is still open, with what came meanwhile.

        A peer whose connection was open on another node when it was claimed
        (that node let go of it then) goes back to that node, which takes it
        up again (``adopt``) before its mail; if that connection ended
        meanwhile, it is lost from then, with the resume grace it had then.
        """
        peer_id = resumed.peer_id
        claim = self._claims.pop(peer_id, None)
        local = self._local.get(peer_id)
        if claim is None or local is None or local.token != new_token:
            return
        kept, dropped = claim.box.drain()
        mail = [*resumed.kept, *kept]
        dropped += resumed.dropped
        if claim.lost is None and claim.node == self.node_id:
            local.token = old_token
            self._changed()
            with contextlib.suppress(BackendUnavailable):  # written back on recovery
                await self._run("release", peer_id, new_token, old_token, "", dropped, 0)
            await self._hand(mail)
            return
        deadline = repr(claim.lost) if claim.lost is not None else ""  # "": back to claim.node
        self._drop_local(peer_id)
        self._losing[peer_id] = self._losing.get(peer_id, 0) + 1
        try:
            async with self._locked():
                # Taken from the inbox for it since it was let go: newer than its mail.
                items = [(d.size, pack([d.event, d.payload])) for d in mail]
                items += self._parked.pop(peer_id, [])
                args: list[Any] = [peer_id, new_token, old_token, deadline, dropped, len(items)]
                for size, blob in items:
                    args += [size, blob]
                with contextlib.suppress(BackendUnavailable):  # lost with the grace on recovery
                    await self._run("release", *args)
        finally:
            left = self._losing.pop(peer_id) - 1
            if left:
                self._losing[peer_id] = left

    async def members(self, room: str) -> list[Member]:
        if self._down is not None and self._room_is_local(room):
            return list(self._room_locals(room).values())
        flat = await self._call(self._redis.hgetall, f"{self._prefix}room:{room}")
        members = [_member(_str(pid), blob) for pid, blob in flat.items()]
        if room in self._remote_seen:
            self._seen(room, (m.peer_id for m in members))
        return members

    async def is_member(self, room: str, peer_id: str) -> bool:
        local = self._local.get(peer_id)
        if local is not None:
            return room in local.rooms
        if self._down is None and peer_id in self._remote_seen.get(room, ()):
            # This node's view of another node's member, kept by the roster
            # news its own peers get: no round trip. A view that lags (the
            # peer left a moment ago) costs nothing: ``deliver`` checks
            # membership again inside the script.
            return True
        found = await self._call(self._redis.hexists, f"{self._prefix}room:{room}", peer_id)
        return bool(found)

    async def rooms_of(self, peer_id: str) -> list[str]:
        local = self._local.get(peer_id)
        if local is not None:
            return list(local.rooms)
        rooms = await self._call(self._redis.lrange, f"{self._prefix}peer:{peer_id}:rooms", 0, -1)
        return [_str(room) for room in rooms]

    async def counts(self) -> tuple[int, int]:
        if self._down is None:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.scard(f"{self._prefix}rooms")
                    pipe.scard(f"{self._prefix}peers")
                    rooms, peers = await pipe.execute()
                return int(rooms), int(peers)
            except UNREACHABLE as exc:
                self._mark_down(exc)
        rooms_here = {room for peer in self._local.values() for room in peer.rooms}
        return len(rooms_here), len(self._local)

    # -- delivery --------------------------------------------------------
    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        here = [d for d in deliveries if d.peer_id in self._local]
        away = [d for d in deliveries if d.peer_id not in self._local]
        for _ in range(3):
            if not away:
                break
            away = await self._send_away(away)
        if here:
            await self._hand(here)

    async def _send_away(self, away: list[Delivery]) -> list[Delivery]:
        """Route ``away`` with whatever else this loop turn sends: one script, one round trip.

        Batches go out one at a time, in the order they were asked for, so
        what one sender sends keeps its order. The task holding the delivery
        lock (a sink that ends up delivering) routes its own at once: the
        batch in flight may be waiting for that lock.
        """
        if self._down is not None:
            raise self._unavailable()
        if self._lock_owner is not None and self._lock_owner is asyncio.current_task():
            return await self._route(away)
        done: asyncio.Future[list[Delivery]] = asyncio.get_running_loop().create_future()
        self._outgoing.append((away, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"redis-deliver-{self.node_id}")
        return await done

    async def _flush(self) -> None:
        while self._outgoing:
            batch, self._outgoing = self._outgoing, []
            try:
                again = await self._route([d for part, _ in batch for d in part])
            except Exception as exc:  # noqa: BLE001 - each caller gets it, as if it had asked alone
                for _, done in batch:
                    if not done.done():
                        done.set_exception(BackendUnavailable(exc.message) if isinstance(exc, BackendUnavailable) else exc)
                continue
            retry = {id(d) for d in again}
            for part, done in batch:
                if not done.done():
                    done.set_result([d for d in part if id(d) in retry])

    async def _route(self, away: list[Delivery]) -> list[Delivery]:
        """Send deliveries for peers not held here on their way; return any to try again.

        The script answers "held here" for a peer Redis still places on this
        node while this node has let go of it: its ``lose`` is under way
        (park the message: ``lose`` puts it in the mailbox first), or done
        in between (route it again: Redis now says lost).
        """
        blobs: list[bytes] = []
        index: dict[tuple[int, str], int] = {}
        triples: list[Any] = []
        for d in away:
            key = (id(d.payload), d.event)
            b = index.get(key)
            if b is None:
                blobs.append(pack([d.event, d.payload]))
                b = index[key] = len(blobs)
            room = d.payload.get("room") if d.event in _CHECKED else None
            triples += [d.peer_id, b, d.size, room if isinstance(room, str) else ""]
        held = await self._run_on(self._route_line, "deliver", len(blobs), *blobs, *triples)
        if not held:
            return []
        if int(held[0]) == -1:
            raise BackendUnavailable(
                "a node of this cluster is too far behind on its deliveries: try again shortly"
            )
        again: list[Delivery] = []
        now_here: list[Delivery] = []
        async with self._locked():
            for position in held:
                d = away[int(position) - 1]
                if d.peer_id in self._local:  # resumed here meanwhile
                    now_here.append(d)
                elif d.peer_id in self._losing:
                    blob = blobs[index[(id(d.payload), d.event)] - 1]
                    self._parked.setdefault(d.peer_id, []).append((d.size, blob))
                else:
                    again.append(d)
        if now_here:
            await self._hand(now_here)
        return again

    async def _inbox_loop(self) -> None:
        while not self._closing:
            if self._down is not None:
                await self._up.wait()
                continue
            try:
                if not self._wake_line.subscribed:
                    if self._listening:  # its connection ended: Redis went away
                        self._listening = False
                        raise RedisConnectionError("the inbox's subscription ended")
                    # Before the take: no wake-up is missed.
                    await self._wake_line.subscribe(self._inbox, self._wake.set)
                    self._listening = True
                # Under load each take finds more waiting: wait only once it is
                # empty, for the wake-up of the next entry (a wake-up that came
                # during the take returns at once), and take at least every BLOCK_MS.
                self._wake.clear()
                if not await self._claim():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(BLOCK_MS / 1000):
                            await self._wake.wait()
            except UNREACHABLE as exc:
                self._mark_down(exc)
            except BackendUnavailable:
                pass
            except Exception:  # keep reading whatever one batch hit
                log.exception("redis inbox round failed")
                await asyncio.sleep(0.5)

    async def _claim(self) -> int:
        """Take what waits in this node's inbox to the sink; return how many entries are left."""
        async with self._locked():
            left, entries = await self._run_on(self._inbox_line, "claim", CLAIM_BATCH, CLAIM_BYTES)
            out: list[Delivery] = []
            for entry in entries:
                kind = entry[0]
                if kind == b"c":
                    if entry[1] == b"adopt":
                        await self._adopt(_str(entry[2]))
                    else:
                        self._evicted(_str(entry[2]))
                    continue
                pids, blob, size = entry[1], entry[2], int(entry[3])
                event, payload = unpack(blob)
                self._note_roster(event, payload)
                binary = holds_bytes(blob)  # the adapter need not walk the payload
                for pid in _str(pids).split(","):
                    if pid in self._local:
                        out.append(Delivery(pid, event, payload, size, binary))
                    elif pid in self._losing:  # into its mailbox, before anything newer
                        self._parked.setdefault(pid, []).append((size, blob))
                    # else it is being forgotten: nobody will read it
            if out:
                await self._hand(out)
            return int(left)

    def _note_roster(self, event: str, payload: Any) -> None:
        """Keep ``_remote_seen`` current from the roster news other nodes send."""
        if event not in ("peer-joined", "peer-left") or not isinstance(payload, dict):
            return
        room, pid = payload.get("room"), payload.get("peerId")
        if not isinstance(room, str) or not isinstance(pid, str) or pid in self._local:
            return
        if event == "peer-joined":
            self._remote_seen.setdefault(room, set()).add(pid)
        else:
            self._remote_seen.get(room, set()).discard(pid)

    def _evicted(self, peer_id: str) -> None:
        """The peer resumed on another node: this node no longer speaks for it."""
        if self._drop_local(peer_id) is not None:
            log.info("peer %s resumed on another node", peer_id)
        self._parked.pop(peer_id, None)
        self._claims.pop(peer_id, None)

    async def _adopt(self, peer_id: str) -> None:
        """A resume on another node that took the peer from this node's open
        connection failed: the peer is this node's again, as before it."""
        if peer_id in self._local or peer_id in self._losing:
            return  # its connection here is ending: the lose decides
        key = f"{self._prefix}peer:{peer_id}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(key, "tok", "node", "lost")
                pipe.lrange(f"{key}:rooms", 0, -1)
                (tok, node, lost), rooms = await self._call(pipe.execute)
            if tok is None or node is None or _str(node) != self.node_id or lost is not None:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for room in rooms:
                    pipe.hget(f"{self._prefix}room:{_str(room)}", peer_id)
                blobs = await self._call(pipe.execute)
        except BackendUnavailable:
            return  # its connection here then ends by itself (nothing reaches it)
        if peer_id in self._local or peer_id in self._losing:
            return
        local = _LocalPeer(_str(tok))
        for room, blob in zip(rooms, blobs):
            if blob:
                local.rooms[_str(room)] = _member(peer_id, blob)
        self._local[peer_id] = local
        self._changed()
        log.info("peer %s is back here: its resume on another node failed", peer_id)

    # -- liveness and recovery -------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.node_ttl / 5
        # Not ``while True``: close() cancels this task, and a cancel that lands
        # inside redis-py can come out as a connection error, caught below;
        # close() would then wait on this loop for ever.
        while not self._closing:
            await asyncio.sleep(interval)
            now = asyncio.get_running_loop().time()
            for line in self._lines:
                line.check(now)  # a reply overdue ends its connection
            try:
                await self._beat()
            except Exception:  # never let one bad round stop the heartbeat
                log.exception("redis heartbeat round failed")

    async def _beat(self) -> None:
        try:
            if self._down is not None:
                # Connections from before the outage are dead: start afresh.
                await self._redis.connection_pool.disconnect()
                for line in self._lines:
                    line.close()
                self._listening = False
            fresh, reaped, cursor = await self._scripts["sweep"](
                args=[
                    *self._base_args,
                    int(self.node_ttl * 1000),
                    repr(self.clock()),
                    repr(self.resume_grace),
                    self._refresh_cursor,
                    REFRESH_SLICE,
                ]
            )
            self._refresh_cursor = int(cursor)
            if reaped:
                log.info("reaped %d node(s) whose heartbeat stopped", reaped)
            if self._down is not None or fresh:
                await self._restore()
        except UNREACHABLE as exc:
            self._mark_down(exc)
            return
        if self._down is not None:
            log.info("redis back at %s", self._url)
            self._down = None
            self._up.set()
        if self._left_later:
            with contextlib.suppress(*UNREACHABLE):
                await self._tell_left_later()

    async def _restore(self) -> None:
        """Write this node's own peers back into Redis, until the mirror holds still."""
        async with self._locked():
            while True:
                version = self._version
                peers = list(self._local.items())
                for start in range(0, len(peers), RESTORE_BATCH):
                    args: list[Any] = []
                    chunk = peers[start:start + RESTORE_BATCH]
                    for pid, peer in chunk:
                        args += [pid, peer.token, len(peer.rooms)]
                        for room, member in peer.rooms.items():
                            args += [room, _member_blob(member)]
                    evicted, back, refused = await self._scripts["restore"](
                        args=[*self._base_args, self._capacity or 2**31, len(chunk), *args]
                    )
                    for pid in evicted:
                        self._evicted(_str(pid))
                    for raw_pid, items in back:
                        await self._hand_back(_str(raw_pid), items)
                    for raw_pid, raw_room in refused:
                        await self._refused(_str(raw_pid), _str(raw_room))
                held = await self._redis.smembers(f"{self._prefix}node:{self.node_id}:peers")
                deadline = repr(self.clock() + self.resume_grace)
                for raw_pid in held:
                    pid = _str(raw_pid)
                    if pid in self._left_while_down:
                        await self._tell_left(pid)
                    elif pid not in self._local:  # its connection broke while Redis was away
                        await self._scripts["lose"](args=[*self._base_args, pid, deadline, "", 0])
                # A departure made here of a peer that Redis places on another
                # node: it was resumed there meanwhile, and what ended here was
                # its old connection. It did not leave.
                moved = set()
                for pid in list(self._left_while_down):
                    node = await self._redis.hget(f"{self._prefix}peer:{pid}", "node")
                    if node is not None and _str(node) != self.node_id:
                        moved.add(pid)
                if version == self._version:
                    # Redis no longer knows these: tell the rooms once every
                    # live node has written its peers back (within one TTL).
                    due = self.clock() + self.node_ttl
                    for pid, rooms in self._left_while_down.items():
                        if pid in moved:
                            log.info("peer %s resumed on another node: its old connection's end is not told", pid)
                        else:
                            self._left_later.append((due, pid, rooms))
                    self._left_while_down.clear()
                    return

    async def _refused(self, peer_id: str, room: str) -> None:
        """A seat taken while Redis was away that the room no longer had once
        it was back: the peer is out of the room, its local roommates are told."""
        local = self._local.get(peer_id)
        if local is None or local.rooms.pop(room, None) is None:
            return
        self._changed()
        log.warning("peer %s is out of room %s: it was full once Redis was back", peer_id, room)
        payload = {"room": room, "peerId": peer_id, "reason": "disconnected"}
        others = [Delivery(pid, "peer-left", payload) for pid in self._room_locals(room)]
        if others:
            await self._hand(others)

    async def _tell_left(self, peer_id: str) -> None:
        """Finish a departure made while Redis was away: the other nodes' peers hear of it now."""
        found = await self._scripts["forget"](args=[*self._base_args, peer_id, "0", ""])
        for raw_room, remaining in found or []:
            await self._announce_left(_str(raw_room), peer_id, [_str(pid) for pid in remaining])
        self._left_while_down.pop(peer_id, None)

    async def _announce_left(self, room: str, peer_id: str, remaining: list[str]) -> None:
        others = [pid for pid in remaining if pid not in self._local and pid != peer_id]
        if not others:
            return
        blob = pack(["peer-left", {"room": room, "peerId": peer_id, "reason": "left"}])
        triples: list[Any] = []
        for pid in others:
            triples += [pid, 1, 0, ""]
        await self._scripts["deliver"](args=[*self._base_args, 1, blob, *triples])

    async def _tell_left_later(self) -> None:
        now = self.clock()
        due = [item for item in self._left_later if item[0] <= now]
        for item in due:
            _, peer_id, rooms = item
            for room in rooms:
                members = await self._redis.hkeys(f"{self._prefix}room:{room}")
                await self._announce_left(room, peer_id, [_str(pid) for pid in members])
            self._left_later.remove(item)

    async def _hand_back(self, peer_id: str, items: list[bytes]) -> None:
        deliveries = []
        for item in items:
            size, blob = _mail_item(item)
            event, payload = unpack(blob)
            deliveries.append(Delivery(peer_id, event, payload, size))
        if deliveries:
            await self._hand(deliveries)

    # -- operations: the admin API (issue 16) -----------------------------
    async def room_list(self, limit: int) -> list[tuple[str, int]]:
        """Scans the room set until ``limit`` non-empty rooms are found (a room
        whose key expired may linger in the set: it is skipped, not counted)."""
        found: dict[str, int] = {}
        cursor: int = 0
        while True:
            cursor, batch = await self._call(
                self._redis.sscan, f"{self._prefix}rooms", cursor, count=redis_admin.SCAN_BATCH
            )
            rooms = sorted({_str(room) for room in batch} - found.keys())
            if rooms:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for room in rooms:
                        pipe.hlen(f"{self._prefix}room:{room}")
                    counts = await self._call(pipe.execute)
                found.update((room, int(n)) for room, n in zip(rooms, counts) if int(n) > 0)
            if cursor == 0 or len(found) >= limit:
                break
        return sorted(found.items())[:limit]

    async def peek(self, room: str) -> list[tuple[Member, bool]]:
        members = await self.members(room)
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hexists(f"{self._prefix}peer:{member.peer_id}", "lost")
            lost = await self._call(pipe.execute)
        return [(member, not is_lost) for member, is_lost in zip(members, lost)]

    async def kick(self, peer_id: str) -> list[Departure]:
        _, *rest = await self._run("kick", peer_id, "1", "")
        found = rest[0] if rest else None
        return [
            Departure(_str(room), peer_id, [_str(pid) for pid in remaining])
            for room, remaining in found or []
        ]
