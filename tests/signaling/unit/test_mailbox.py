"""The resume mailbox: order kept, both bounds, exact dropped count."""

from __future__ import annotations

import pytest

from signaling.mailbox import MAX_BYTES, MAX_MESSAGES, Mailbox


def fill(box: Mailbox[str], puts: list[tuple[str, int]]) -> tuple[list[str], int]:
    for item, size in puts:
        box.put(item, size)
    return box.drain()


@pytest.mark.parametrize(
    ("max_messages", "max_bytes", "puts", "kept", "dropped"),
    [
        (3, 100, [], [], 0),
        (3, 100, [("a", 1), ("b", 1), ("c", 1)], ["a", "b", "c"], 0),
        # count bound: the oldest go first
        (3, 100, [(c, 1) for c in "abcde"], ["c", "d", "e"], 2),
        # byte bound: exactly full is kept
        (10, 10, [("a", 4), ("b", 6)], ["a", "b"], 0),
        # byte bound: one byte over drops the oldest
        (10, 10, [("a", 4), ("b", 6), ("c", 1)], ["b", "c"], 1),
        # one big item can push out several small ones
        (10, 10, [("a", 3), ("b", 3), ("c", 3), ("d", 8)], ["d"], 3),
        # both bounds at once
        (2, 10, [("a", 5), ("b", 5), ("c", 1), ("d", 9)], ["c", "d"], 2),
        # zero-sized items count against max_messages only
        (2, 1, [("a", 0), ("b", 0), ("c", 0)], ["b", "c"], 1),
        # an item bigger than max_bytes is dropped itself; the kept ones stay
        (10, 10, [("a", 4), ("huge", 11), ("b", 5)], ["a", "b"], 1),
        (10, 10, [("huge", 11)], [], 1),
    ],
    ids=[
        "empty",
        "under-bounds",
        "count-bound",
        "bytes-exactly-full",
        "bytes-over",
        "big-pushes-many",
        "both-bounds",
        "zero-size",
        "oversize-among-others",
        "oversize-alone",
    ],
)
def test_mailbox_table(
    max_messages: int,
    max_bytes: int,
    puts: list[tuple[str, int]],
    kept: list[str],
    dropped: int,
) -> None:
    assert fill(Mailbox(max_messages, max_bytes), puts) == (kept, dropped)


def test_contract_defaults() -> None:
    box: Mailbox[int] = Mailbox()
    assert (box.max_messages, box.max_bytes) == (MAX_MESSAGES, MAX_BYTES) == (1000, 4 * 1024 * 1024)


def test_thousand_and_one_messages_drop_exactly_the_first() -> None:
    box: Mailbox[int] = Mailbox()
    for i in range(1001):
        box.put(i, 10)
    assert box.drain() == (list(range(1, 1001)), 1)


def test_four_mib_bound() -> None:
    box: Mailbox[int] = Mailbox()
    for i in range(5):
        box.put(i, 1024 * 1024)
    assert box.total_bytes == 4 * 1024 * 1024
    assert box.drain() == ([1, 2, 3, 4], 1)


def test_counters_follow_puts() -> None:
    box: Mailbox[str] = Mailbox(max_messages=2, max_bytes=100)
    box.put("a", 10)
    box.put("b", 20)
    box.put("c", 30)
    assert (len(box), box.total_bytes, box.dropped) == (2, 50, 1)


def test_drain_empties_and_resets_dropped() -> None:
    box: Mailbox[str] = Mailbox(max_messages=1, max_bytes=100)
    box.put("a", 1)
    box.put("b", 1)
    assert box.drain() == (["b"], 1)
    assert (len(box), box.total_bytes, box.dropped) == (0, 0, 0)
    assert box.drain() == ([], 0)
    box.put("c", 1)
    assert box.drain() == (["c"], 0)


def test_items_are_kept_as_given() -> None:
    payload: dict[str, object] = {"room": "r", "data": b"\x00\x01"}
    box: Mailbox[dict[str, object]] = Mailbox()
    box.put(payload, 2)
    assert box.drain()[0][0] is payload


@pytest.mark.parametrize(("max_messages", "max_bytes"), [(0, 10), (10, 0), (-1, 10)])
def test_bad_bounds(max_messages: int, max_bytes: int) -> None:
    with pytest.raises(ValueError):
        Mailbox(max_messages, max_bytes)


def test_negative_size_is_refused() -> None:
    box: Mailbox[str] = Mailbox()
    with pytest.raises(ValueError):
        box.put("a", -1)
    assert len(box) == 0
