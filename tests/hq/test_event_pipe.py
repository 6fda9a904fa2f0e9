"""The event reader's pipe (terminal/hq/event_pipe.py) on a real pipe: frames arrive whole and in
order however the kernel splits them, one frame's failure does not hold up the next, and the
writer sheds past its bound while the ingest process does not read."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.hq.event_pipe import (
    PARSED,
    RAW,
    FrameReader,
    FrameWriter,
    event_of,
    frame,
    parsed,
)
from terminal.hq.event_reader import EventReader
from terminal.hq.policy import Limits
from terminal.protocol.messages import EVENT_KINDS, Event
from terminal.protocol.mqtt import Message, MqttConfig
from terminal.protocol.topics import Topics

TOPIC = "posterm/v1/t/S001/T01/events"


def _read_all(data: bytes, chunks: list[int]) -> list[tuple[str, bytes]]:
    """Feed ``data`` to a FrameReader in pieces of the given sizes (the rest at the end)."""
    got: list[tuple[str, bytes]] = []
    reader = FrameReader(lambda topic, payload: got.append((topic, payload)), lambda: None)
    start = 0
    for size in chunks:
        reader.data_received(data[start:start + size])
        start += size
    reader.data_received(data[start:])
    return got


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([TOPIC, "posterm/v1/t/门店/T2/events"]),
                          st.binary(max_size=3000)), max_size=20),
       st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_frames_arrive_whole_and_in_order_however_split(
        frames: list[tuple[str, bytes]], chunks: list[int]) -> None:
    data = b"".join(frame(topic, payload) for topic, payload in frames)
    assert _read_all(data, chunks) == frames


def test_a_frame_that_fails_holds_up_none_after_it() -> None:
    got: list[bytes] = []

    def take(topic: str, payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("a bug in taking one event")
        got.append(payload)

    reader = FrameReader(take, lambda: None)
    reader.data_received(frame(TOPIC, b"one") + frame(TOPIC, b"bad") + frame(TOPIC, b"two"))
    reader.data_received(frame(TOPIC, b"three"))
    assert got == [b"one", b"two", b"three"]


def test_through_a_real_pipe_and_shed_past_the_bound() -> None:
    """Nothing reads the pipe at first: the writer keeps frames for it up to its bound and
    sheds the rest; once the reading end reads, every frame kept arrives, in order, and the
    writer's close is seen as the pipe's end."""

    async def scenario() -> tuple[list[bytes], list[bool], bool]:
        reading, writing = os.pipe()
        writer = await FrameWriter.open(writing, lambda: None)
        writer.ahead = 256 * 1024  # the kernel's pipe (up to 1 MiB) fills first, then this
        payload = b"x" * 10_000
        sent = [writer.send(TOPIC, payload + str(n).encode()) for n in range(400)]
        got: list[bytes] = []
        closed = asyncio.Event()
        await FrameReader.open(reading, lambda topic, body: got.append(body), closed.set)
        writer.close()
        await asyncio.wait_for(closed.wait(), 30)
        return got, sent, closed.is_set()

    got, sent, closed = asyncio.run(scenario())
    assert closed
    assert False in sent  # 4 MB offered: past the pipe and the bound, some were shed
    kept = [n for n, ok in enumerate(sent) if ok]
    assert sent[:kept[-1] + 1] == [True] * (kept[-1] + 1)  # shed only once past the bound
    assert got == [b"x" * 10_000 + str(n).encode() for n in kept]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.text(max_size=10), JSON, max_size=6),
       offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
       micros=st.integers(min_value=0, max_value=999_999), trusted=st.booleans(),
       kind=st.sampled_from(sorted(EVENT_KINDS)))
def test_a_parsed_event_is_made_again_exactly(body: dict[str, object], offset: int,
                                              micros: int, trusted: bool, kind: str) -> None:
    """What the reader hands on (event_pipe.parsed) is the Event the till's bytes parse to:
    the same fields, types, body order and aware time (its offset kept)."""
    at = datetime(2026, 12, 6, 17, 45, 1, micros, timezone(timedelta(minutes=offset)))
    raw = Event(str(uuid.uuid4()), kind, "S001", "门店T1", 7, 2, at, trusted, body).to_json()
    event = Event.from_json(raw)
    again = event_of(parsed(event))
    assert again == event
    assert again.wall_time.utcoffset() == event.wall_time.utcoffset()
    assert list(again.body) == list(event.body)
    assert again.to_json() == raw


def test_the_reader_parses_what_it_admits_and_passes_the_malformed_on_as_it_came() -> None:
    """The event reader parses each event it admits (on its own core, not the ingest's) and
    the ingest's FrameReader gets the Event; a payload that does not parse goes on as its
    bytes, for the ingest process to refuse as before."""
    reader = EventReader(MqttConfig("127.0.0.1", 1, "test-events"), Topics(), Limits(), -1)
    sent: list[bytes] = []

    class Writer:
        def send(self, topic: str, payload: bytes, kind: int = RAW) -> bool:
            sent.append(frame(topic, payload, kind))
            return True

    reader._writer = Writer()  # type: ignore[assignment]
    good = Event(str(uuid.uuid4()), "sale", "S001", "T01", 3, 1,
                 datetime(2026, 12, 6, 9, 30, tzinfo=UTC), True, {"sale": "A1", "lines": []})
    for payload in (good.to_json(), b'{"id": "not an event"}'):
        reader._on_event(Message(TOPIC, payload, 1, False))
    events: list[tuple[str, Event]] = []
    frames: list[tuple[str, bytes]] = []
    ingest = FrameReader(lambda topic, payload: frames.append((topic, payload)), lambda: None,
                         lambda topic, event: events.append((topic, event)))
    ingest.data_received(b"".join(sent))
    assert events == [(TOPIC, good)]
    assert frames == [(TOPIC, b'{"id": "not an event"}')]
    assert sent[0][0] == PARSED and sent[1][0] == RAW
