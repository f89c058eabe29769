"""Room state in this process: the default, single-node backend."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ResumeExpired, RoomFull, kicked
from ..mailbox import Mailbox
from .base import Delivery, Departure, JoinResult, Member, Resumed, Sink


@dataclass(slots=True)
class _Claim:
    """A resume under way: what to put back if it fails."""

    token: str  # the token it presented
    lost_until: float | None  # None: its old connection was still open


@dataclass(slots=True)
class _PeerRecord:
    resume_token: str
    lost_until: float | None = None
    mailbox: Mailbox[Delivery] | None = None
    rooms: dict[str, None] = field(default_factory=dict)  # ordered set
    claim: _Claim | None = None
    kicked: bool = False  # out of every room, token dead; goes when what holds it ends


class MemoryBackend:
    """Every operation completes without awaiting, so each is atomic."""

    def __init__(self, *, mailbox_messages: int = 1000, mailbox_bytes: int = 4 * 1024 * 1024):
        self._rooms: dict[str, dict[str, Member]] = {}
        self._peers: dict[str, _PeerRecord] = {}
        self._tokens: dict[str, str] = {}
        self._sink: Sink | None = None
        self._mailbox_messages = mailbox_messages
        self._mailbox_bytes = mailbox_bytes

    async def start(self, sink: Sink) -> None:
        self._sink = sink

    async def close(self) -> None:
        self._sink = None

    async def unavailable_reason(self) -> str | None:
        return None

    # -- peers -----------------------------------------------------------
    async def register(self, peer_id: str, resume_token: str) -> None:
        self._peers[peer_id] = _PeerRecord(resume_token=resume_token)
        self._tokens[resume_token] = peer_id

    async def rotate_token(self, peer_id: str, resume_token: str) -> None:
        record = self._peers.get(peer_id)
        if record is None:
            return
        self._tokens.pop(record.resume_token, None)
        record.resume_token = resume_token
        self._tokens[resume_token] = peer_id

    def _current(self, peer_id: str, token: str | None) -> _PeerRecord | None:
        """The peer's record, unless it is gone or was resumed since ``token``."""
        record = self._peers.get(peer_id)
        if record is None or (token is not None and record.resume_token != token):
            return None
        return record

    async def lose(self, peer_id: str, deadline: float, token: str | None) -> None:
        claimed = self._peers.get(peer_id)
        if claimed is not None and claimed.kicked and claimed.claim is None:
            del self._peers[peer_id]  # nothing to keep: no rooms, no token
            return
        if claimed is not None and claimed.claim is not None and claimed.claim.token == token:
            # Its old connection ended while a resume is under way: should
            # that resume fail, the peer is a lost one.
            if claimed.claim.lost_until is None:
                claimed.claim.lost_until = deadline
            return
        record = self._current(peer_id, token)
        if record is None:
            return
        record.lost_until = deadline
        record.mailbox = Mailbox(max_messages=self._mailbox_messages, max_bytes=self._mailbox_bytes)

    async def resume(self, resume_token: str, new_token: str) -> Resumed:
        peer_id = self._tokens.pop(resume_token, None)
        record = self._peers.get(peer_id) if peer_id is not None else None
        if peer_id is None or record is None:
            raise ResumeExpired(
                "this resume token is unknown, used or expired: join again without it"
            )
        record.claim = _Claim(resume_token, record.lost_until)
        record.lost_until = None  # the reaper leaves a claimed peer alone
        if record.mailbox is None:  # its old connection is being replaced: keep, do not send
            record.mailbox = Mailbox(max_messages=self._mailbox_messages, max_bytes=self._mailbox_bytes)
        record.resume_token = new_token
        self._tokens[new_token] = peer_id
        return Resumed(peer_id=peer_id, rooms=list(record.rooms))

    async def attach(self, peer_id: str) -> tuple[list[Delivery], int]:
        record = self._peers.get(peer_id)
        if record is None or record.claim is None:
            return [], 0
        if record.kicked:
            raise kicked()  # the claim stays for ``release``
        kept, dropped = record.mailbox.drain() if record.mailbox else ([], 0)
        record.mailbox = None
        record.claim = None
        return kept, dropped

    async def release(self, resumed: Resumed, old_token: str, new_token: str) -> None:
        record = self._peers.get(resumed.peer_id)
        if record is None or record.claim is None or record.resume_token != new_token:
            return
        claim, record.claim = record.claim, None
        if record.kicked:
            # No token comes back. An open old connection gets what came
            # meanwhile (the kick ends it); a lost one has nothing to keep.
            kept, _ = record.mailbox.drain() if record.mailbox else ([], 0)
            record.mailbox = None
            if claim.lost_until is not None:
                del self._peers[resumed.peer_id]
            elif kept and self._sink is not None:
                await self._sink(kept)
            return
        self._tokens.pop(record.resume_token, None)
        record.resume_token = claim.token
        self._tokens[claim.token] = resumed.peer_id
        record.lost_until = claim.lost_until
        if claim.lost_until is None and record.mailbox is not None:
            # Back to its open connection, with what came meanwhile.
            kept, _ = record.mailbox.drain()
            record.mailbox = None
            if kept and self._sink is not None:
                await self._sink(kept)

    async def expired(self, now: float) -> list[str]:
        gone = [
            peer_id
            for peer_id, record in self._peers.items()
            if record.lost_until is not None and record.lost_until <= now
        ]
        for peer_id in gone:
            record = self._peers[peer_id]
            record.lost_until = None  # returned once
            # Its expiry is under way: a resume now would be forgotten at once.
            self._tokens.pop(record.resume_token, None)
        return gone

    async def forget(self, peer_id: str, token: str | None = None) -> list[Departure]:
        claimed = self._peers.get(peer_id)
        if token is not None and claimed is not None and claimed.claim is not None \
                and claimed.claim.token == token:
            # Its old connection left while a resume is under way: should that
            # resume fail, the peer goes at the next reap rather than linger.
            claimed.claim.lost_until = float("-inf")
            return []
        record = self._current(peer_id, token)
        if record is None:
            return []
        del self._peers[peer_id]
        return self._out_of_rooms(peer_id, record)

    def _out_of_rooms(self, peer_id: str, record: _PeerRecord) -> list[Departure]:
        """Kill the peer's token and take it out of every room it is in."""
        self._tokens.pop(record.resume_token, None)
        rooms, record.rooms = list(record.rooms), {}
        departures = [self._remove(room, peer_id) for room in rooms]
        return [d for d in departures if d is not None]

    # -- rooms -----------------------------------------------------------
    async def join(self, room: str, member: Member, capacity: int) -> JoinResult:
        record = self._peers.get(member.peer_id)
        if record is not None and record.kicked:
            raise kicked()
        members = self._rooms.get(room, {})
        if member.peer_id in members:
            others = [m for pid, m in members.items() if pid != member.peer_id]
            return JoinResult(others=others, already_member=True)
        if len(members) >= capacity:
            raise RoomFull(f"room {room!r} already holds {capacity} peers")
        others = list(members.values())
        self._rooms.setdefault(room, members)[member.peer_id] = member
        if record is not None:
            record.rooms[room] = None
        return JoinResult(others=others, already_member=False)

    async def leave(self, room: str, peer_id: str) -> Departure | None:
        record = self._peers.get(peer_id)
        if record is not None:
            record.rooms.pop(room, None)
        return self._remove(room, peer_id)

    def _remove(self, room: str, peer_id: str) -> Departure | None:
        members = self._rooms.get(room)
        if members is None or members.pop(peer_id, None) is None:
            return None
        if not members:
            del self._rooms[room]
        return Departure(room=room, peer_id=peer_id, remaining=list(members))

    async def update_meta(self, room: str, peer_id: str, meta: dict[str, Any]) -> list[str] | None:
        members = self._rooms.get(room)
        member = members.get(peer_id) if members is not None else None
        if members is None or member is None:
            return None
        members[peer_id] = replace(member, meta=meta)
        return [pid for pid in members if pid != peer_id]

    async def members(self, room: str) -> list[Member]:
        return list(self._rooms.get(room, {}).values())

    async def is_member(self, room: str, peer_id: str) -> bool:
        return peer_id in self._rooms.get(room, ())

    async def rooms_of(self, peer_id: str) -> list[str]:
        record = self._peers.get(peer_id)
        return list(record.rooms) if record else []

    async def counts(self) -> tuple[int, int]:
        return len(self._rooms), len(self._peers)

    # -- delivery --------------------------------------------------------
    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        live: list[Delivery] = []
        for delivery in deliveries:
            record = self._peers.get(delivery.peer_id)
            if record is None:
                continue
            if record.mailbox is not None:
                record.mailbox.put(delivery, delivery.size)
            else:
                live.append(delivery)
        if live and self._sink is not None:
            await self._sink(live)

    # -- operations: the admin API (issue 16) -----------------------------
    async def room_list(self, limit: int) -> list[tuple[str, int]]:
        return [(room, len(members)) for room, members in itertools.islice(self._rooms.items(), limit)]

    async def peek(self, room: str) -> list[tuple[Member, bool]]:
        return [
            (member, (record := self._peers.get(pid)) is not None and record.mailbox is None)
            for pid, member in self._rooms.get(room, {}).items()
        ]

    async def kick(self, peer_id: str) -> list[Departure]:
        record = self._peers.get(peer_id)
        if record is None:
            return []
        if record.mailbox is not None and record.claim is None:
            return await self.forget(peer_id)  # lost: nothing holds it
        # Connected, or a resume is under way: the record stays, marked, until
        # whatever holds it ends (the kick's KICK delivery, or the resume's failure).
        record.kicked = True
        return self._out_of_rooms(peer_id, record)
