"""The ordered exactly-once session, alone and over lossy switching links."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from peer.errors import FrameError, MessageTooLarge, SendBufferFull, SessionError
from peer.framing import (
    Ack,
    FileChunk,
    FileEnd,
    FileOffer,
    MessagePart,
    Sequenced,
    decode_frames,
    encode_frame,
    pack,
)
from peer.session import Delivery, JsonValue, Message, Session
from peer.testing import ChannelClosed, FakeClock, MemoryChannel, channel_pair

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "peer-wire.json").read_text("utf-8")
)


def messages(deliveries: list[Delivery]) -> list[Any]:
    return [d.data for d in deliveries if isinstance(d, Message)]


def test_json_and_bytes_arrive_whole_and_in_order() -> None:
    a, b = Session(), Session()
    out: list[Delivery] = []
    values: list[JsonValue | bytes] = [{"x": [1, "é", None]}, b"\x00\xff", "text", 3.5, None]
    for data in values:
        for frame in a.send_message("e", data, 0.0):
            out += b.receive(frame, 0.0)
    assert out == [
        Message("e", {"x": [1, "é", None]}),
        Message("e", b"\x00\xff"),
        Message("e", "text"),
        Message("e", 3.5),
        Message("e", None),
    ]


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["event"])
def test_golden_message_fragments(vector: dict[str, Any]) -> None:
    data = vector["data"]
    value = bytes.fromhex(data["bytes"]) if "bytes" in data else data["json"]
    sender = Session(fragment_bytes=vector["fragmentBytes"])
    frames = sender.send_message(vector["event"], value, 0.0)
    assert [f.hex() for f in frames] == vector["frames"]
    receiver = Session()
    got = [d for f in frames for d in receiver.receive(f, 0.0)]
    assert got == [Message(vector["event"], value)]


def test_fragmented_message_in_one_batch_and_reversed() -> None:
    a = Session(fragment_bytes=1000)
    payload = bytes(range(256)) * 20
    frames = a.send_message("big", payload, 0.0)
    assert len(frames) == 6
    b = Session()
    assert b.receive(b"".join(frames), 0.0) == [Message("big", payload)]
    c = Session()
    got = [d for f in reversed(frames) for d in c.receive(f, 0.0)]
    assert got == [Message("big", payload)]


def test_duplicates_are_dropped_and_acked_at_once() -> None:
    a, b = Session(), Session(ack_delay=10.0)
    (frame,) = a.send_message("e", 1, 0.0)
    assert messages(b.receive(frame, 0.0)) == [1]
    assert b.poll(0.0) == []
    assert b.receive(frame, 0.0) == []
    assert b.poll(0.0) == [encode_frame(Ack(1))]


def test_out_of_order_frames_wait_for_the_gap() -> None:
    a, b = Session(), Session()
    frames = [a.send_message("e", i, 0.0)[0] for i in range(4)]
    assert b.receive(frames[2], 0.0) == []
    assert b.receive(frames[3], 0.0) == []
    assert messages(b.receive(frames[0], 0.0)) == [0]
    assert messages(b.receive(frames[1], 0.0)) == [1, 2, 3]
    assert b.delivered == 4


def test_frame_too_far_ahead_is_dropped() -> None:
    a, b = Session(), Session(max_reorder_frames=2)
    frames = [a.send_message("e", i, 0.0)[0] for i in range(4)]
    b.receive(frames[3], 0.0)
    assert messages(b.receive(frames[0], 0.0)) == [0]
    assert messages(b.receive(frames[1], 0.0)) == [1]
    assert messages(b.receive(frames[2], 0.0)) == [2]  # 3 was dropped: resend brings it
    assert messages(b.receive(frames[3], 0.0)) == [3]


def test_ack_policy_every_n_frames_or_after_delay() -> None:
    a, b = Session(), Session(ack_every=3, ack_delay=0.5)
    frames = [a.send_message("e", i, 0.0)[0] for i in range(3)]
    b.receive(frames[0], 1.0)
    assert b.poll(1.0) == [] and b.next_deadline() == 1.5
    assert b.poll(1.5) == [encode_frame(Ack(1))]
    b.receive(frames[1], 2.0)
    b.receive(frames[2], 2.0)
    assert b.poll(2.0) == []  # 2 new frames since the last ack: not yet
    c = Session(ack_every=3, ack_delay=0.5)
    c.receive(b"".join(frames), 2.0)
    assert c.poll(2.0) == [encode_frame(Ack(3))]


def test_acks_free_the_send_buffer_and_stop_the_timer() -> None:
    a, b = Session(), Session(ack_delay=0.0)
    for frame in a.send_message("e", "x" * 100, 0.0) + a.send_message("e", 2, 0.0):
        b.receive(frame, 0.0)
    assert a.unacked == 2 and a.buffered_bytes > 100
    for frame in b.poll(0.0):
        a.receive(frame, 0.0)
    assert a.unacked == 0 and a.buffered_bytes == 0 and a.next_deadline() is None


def test_send_buffer_full_queues_nothing_until_acked() -> None:
    a = Session(max_message_bytes=200, max_buffered_bytes=200)
    first = a.send_message("e", "x" * 150, 0.0)
    with pytest.raises(SendBufferFull):
        a.send_message("e", "y" * 150, 0.0)
    assert a.unacked == 1
    a.receive(encode_frame(Ack(1)), 0.0)
    second = a.send_message("e", "y" * 150, 0.0)
    assert decode_frames(second[0])[0] == Sequenced(2, MessagePart("e", b'"' + b"y" * 150 + b'"'))
    assert first != second


def test_message_too_large_and_bad_data() -> None:
    a = Session(max_message_bytes=10)
    with pytest.raises(MessageTooLarge):
        a.send_message("e", b"x" * 11, 0.0)
    with pytest.raises(ValueError):
        a.send_message("e", float("nan"), 0.0)
    with pytest.raises(ValueError):
        a.send_message("e", {1, 2}, 0.0)  # type: ignore[arg-type]
    assert a.unacked == 0


def test_resend_gives_ack_then_all_unacked_in_order() -> None:
    a, b = Session(), Session()
    frames = [a.send_message("e", i, 0.0)[0] for i in range(3)]
    a.receive(encode_frame(Ack(1)), 0.0)
    assert a.resend(0.0) == frames[1:]  # nothing received yet: no ack to add
    b.receive(frames[0], 0.0)
    assert b.resend(0.0) == [encode_frame(Ack(1))]
    assert b.poll(1.0) == []  # the resend carried the pending ack


def test_retransmit_after_silence_with_backoff() -> None:
    a = Session(retransmit_after=1.0)
    frames = a.send_message("e", 1, 10.0)
    assert a.next_deadline() == 11.0
    assert a.poll(10.9) == []
    assert a.poll(11.0) == frames
    assert a.next_deadline() == 13.0  # doubled
    assert a.poll(13.0) == frames
    a.receive(encode_frame(Ack(1)), 13.5)
    assert a.next_deadline() is None


def test_ack_of_unsent_seq_kills_the_session() -> None:
    a = Session()
    a.send_message("e", 1, 0.0)
    with pytest.raises(SessionError):
        a.receive(encode_frame(Ack(2)), 0.0)
    with pytest.raises(SessionError):
        a.send_message("e", 2, 0.0)


@pytest.mark.parametrize(
    "bodies",
    [
        [MessagePart("e", b"{bad", binary=False)],
        [MessagePart("e", b"1", more=True), MessagePart("f", b"2")],
        [MessagePart("e", b"1", more=True), MessagePart("e", b"2", binary=True)],
        [MessagePart("e", b"1", more=True), FileEnd("f", "0" * 64)],
        [MessagePart("e", b"x" * 8, binary=True, more=True), MessagePart("e", b"x" * 8)],
    ],
)
def test_broken_message_stream_is_a_session_error(bodies: list[Any]) -> None:
    b = Session(max_message_bytes=10)
    data = b"".join(encode_frame(Sequenced(i + 1, body)) for i, body in enumerate(bodies))
    with pytest.raises(SessionError):
        b.receive(data, 0.0)


def test_malformed_message_is_dropped_and_the_session_lives() -> None:
    a, b = Session(), Session()
    good = a.send_message("e", 1, 0.0)[0]
    with pytest.raises(FrameError):
        b.receive(good + b"\x01", 0.0)
    assert b.delivered == 0
    assert messages(b.receive(good, 0.0)) == [1]


def test_file_bodies_pass_through_in_stream_order() -> None:
    a, b = Session(), Session()
    frames = a.send_message("before", 1, 0.0)
    frames.append(a.send(FileOffer("f", "a.txt", 2, 16384), 0.0))
    frames.append(a.send(FileChunk("f", 0, b"hi"), 0.0))
    frames += a.send_message("after", 2, 0.0)
    out = [d for f in reversed(frames) for d in b.receive(f, 0.0)]
    assert out == [
        Message("before", 1),
        FileOffer("f", "a.txt", 2, 16384),
        FileChunk("f", 0, b"hi"),
        Message("after", 2),
    ]


class End:
    """One peer in the simulation: a session, a relay link and maybe a data channel."""

    def __init__(self, session: Session, relay: MemoryChannel) -> None:
        self.session = session
        self.relay = relay
        self.channel: MemoryChannel | None = None
        self.received: list[Any] = []

    def write(self, frames: list[bytes]) -> None:
        path = self.channel if self.channel is not None else self.relay
        for message in pack(frames, 4096):
            try:
                path.send(message)
            except ChannelClosed:
                return  # stays unacked: resend or retransmission brings it

    def switch(self, channel: MemoryChannel | None, now: float) -> None:
        self.channel = channel
        self.write(self.session.resend(now))

    def pump(self, now: float) -> None:
        links = [self.relay] + ([self.channel] if self.channel is not None else [])
        for link in links:
            for data in link.receive():
                self.received += messages(self.session.receive(data, now))
        self.write(self.session.poll(now))


def small_session() -> Session:
    return Session(max_message_bytes=2048, max_buffered_bytes=4096, retransmit_after=0.05)


def run_switching_stream(count: int, seed: int) -> tuple[list[Any], list[Any], int]:
    """Both ends stream ``count`` messages while the path flips every 40 steps."""
    clock = FakeClock()
    relay_a, relay_b = channel_pair(loss=0.05, reorder=0.2, seed=seed)
    a, b = End(small_session(), relay_a), End(small_session(), relay_b)
    next_a = next_b = switches = 0
    for step in range(20000):
        if len(a.received) == len(b.received) == count:
            break
        clock.advance(0.002)
        if step % 40 == 10:  # upgrade: a new data channel, each side notices on its own
            a.switch(channel_pair(loss=0.02, reorder=0.1, seed=seed + step)[0], clock.now)
            switches += 1
        elif step % 40 == 13 and a.channel is not None:
            b.switch(a.channel.peer, clock.now)
        elif step % 40 == 30 and a.channel is not None:  # downgrade: forced close
            a.channel.close()
            switches += 1
            a.switch(None, clock.now)
            b.switch(None, clock.now)
        with contextlib.suppress(SendBufferFull):
            while next_a < count:
                a.write(a.session.send_message("n", next_a, clock.now))
                next_a += 1
        with contextlib.suppress(SendBufferFull):
            while next_b < count:
                b.write(b.session.send_message("n", next_b.to_bytes(4, "big"), clock.now))
                next_b += 1
        a.pump(clock.now)
        b.pump(clock.now)
    return b.received, a.received, switches


@pytest.mark.parametrize("seed", [1, 2])
def test_1000_messages_exactly_once_in_order_over_lossy_switching_paths(seed: int) -> None:
    at_b, at_a, switches = run_switching_stream(1000, seed)
    assert switches >= 6
    assert at_b == list(range(1000))
    assert at_a == [i.to_bytes(4, "big") for i in range(1000)]


def test_memory_channel_loss_reorder_and_close() -> None:
    a, b = channel_pair()
    for i in range(5):
        a.send(bytes([i]))
    assert b.in_flight == 5 and b.receive() == [bytes([i]) for i in range(5)]
    lossy, sink = channel_pair(loss=0.5, seed=3)
    for i in range(200):
        lossy.send(bytes([i % 256]))
    assert 60 < sink.in_flight < 140
    shuffled, out = channel_pair(reorder=0.5, seed=4)
    for i in range(50):
        shuffled.send(bytes([i]))
    got: list[bytes] = []
    while len(got) < 50:
        got += out.receive()
    assert sorted(got) == [bytes([i]) for i in range(50)] and got != sorted(got)
    a.send(b"lost")
    b.close()
    assert a.closed and b.receive() == []
    with pytest.raises(ChannelClosed):
        a.send(b"x")
    clock = FakeClock(5.0)
    assert clock.advance(1.5) == clock() == 6.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_fragmented_request_and_its_answer_keep_their_ids() -> None:
    a, b = Session(fragment_bytes=4), Session(fragment_bytes=4)
    frames = a.send_message("ask", {"q": "question"}, 0, request=7)
    assert len(frames) > 1
    assert [d for f in frames for d in b.receive(f, 0)] == [Message("ask", {"q": "question"}, 7)]
    answer = b.send_message("ask", "oops", 0, response=7, error="handler-error")
    got = [d for f in answer for d in a.receive(f, 0)]
    assert got == [Message("ask", "oops", None, 7, "handler-error")]


def test_fragments_that_disagree_on_the_request_id_break_the_session() -> None:
    first = Session(fragment_bytes=2).send_message("e", "abcdef", 0, request=1)[0]
    rest = Session(fragment_bytes=2).send_message("e", "abcdef", 0, request=2)[1:]
    b = Session()
    b.receive(first, 0)
    with pytest.raises(SessionError):
        b.receive(rest[0], 0)


def test_receive_window_holds_frames_unacked_until_handled() -> None:
    """Past the window the receiver neither delivers nor acks, so the sender's
    buffer fills; handled messages let the held ones out, in order, once."""
    a = Session(max_buffered_bytes=8 * 1024 * 1024)
    b = Session(max_unhandled_messages=3, max_unhandled_bytes=250, ack_delay=0.0)
    frames = [f for n in range(10) for f in a.send_message("n", bytes([n]) * 100, 0.0)]
    got: list[Delivery] = []
    for frame in frames:
        got += b.receive(frame, 0.0)
    assert [d.data[0] for d in got if isinstance(d, Message)] == [0, 1]  # 3 x 100 > 250 bytes
    assert b.unhandled == (2, 200) and b.holding
    for frame in b.poll(1.0):
        a.receive(frame, 1.0)
    assert a.unacked == 8  # only what was delivered is acked
    for frame in a.resend(2.0):  # a path switch: the held frames come again
        assert b.receive(frame, 2.0) == []
    while b.holding or b.unhandled[0]:
        b.handled(100)
        got += b.release(3.0)
        for frame in b.poll(3.0):
            a.receive(frame, 3.0)
    assert [d.data[0] for d in got if isinstance(d, Message)] == list(range(10))
    assert a.unacked == 0 and b.unhandled == (0, 0)


def test_a_message_larger_than_the_window_passes_alone() -> None:
    a, b = Session(), Session(max_unhandled_messages=1, max_unhandled_bytes=10)
    got = [d for f in a.send_message("big", b"x" * 50_000, 0.0) for d in b.receive(f, 0.0)]
    assert [len(d.data) for d in got if isinstance(d, Message)] == [50_000]
    frames = a.send_message("next", 1, 0.0)
    assert [d for f in frames for d in b.receive(f, 0.0)] == [] and b.holding
    b.handled(50_000)
    assert b.release(1.0) == [Message("next", 1)]
