"""The messages kept for a peer whose connection was lost, during the resume grace.

A bounded FIFO: at most ``max_messages`` items and ``max_bytes`` bytes (the
contract's 1,000 messages / 4 MiB per peer). Putting an item past either
bound drops the oldest items until both hold again, and counts them in
``dropped``; the resumed client is told that count.

An item bigger than ``max_bytes`` on its own can never fit: it is dropped
itself (counted), and the items already kept stay. The byte bound is a memory
promise, so it is never exceeded, and emptying the box would not make room.

Sizes are the caller's (the wire size of the message, as the contract counts
it); the mailbox never measures an item.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_MESSAGES = 1000
MAX_BYTES = 4 * 1024 * 1024


class Mailbox(Generic[T]):
    """Ordered, bounded queue of items, each with its size in bytes."""

    def __init__(self, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be at least 1")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._bytes = 0
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        """Total size of the items kept."""
        return self._bytes

    @property
    def dropped(self) -> int:
        """Items dropped since the last :meth:`drain`."""
        return self._dropped

    def put(self, item: T, size: int) -> None:
        """Keep ``item`` (``size`` bytes) last, dropping the oldest past a bound."""
        if size < 0:
            raise ValueError("size must be >= 0")
        if size > self.max_bytes:
            self._dropped += 1
            return
        self._items.append((item, size))
        self._bytes += size
        while len(self._items) > self.max_messages or self._bytes > self.max_bytes:
            _, old_size = self._items.popleft()
            self._bytes -= old_size
            self._dropped += 1

    def drain(self) -> tuple[list[T], int]:
        """Take every item, oldest first, and the dropped count; the box is empty after."""
        items = [item for item, _ in self._items]
        dropped = self._dropped
        self._items.clear()
        self._bytes = 0
        self._dropped = 0
        return items, dropped
