"""Admitted events from the event reader to the ingest process, over a pipe.

A frame is the event's topic and payload as they came from the broker, each behind its length
(``>BHI``: the frame's kind, the topic's bytes, then the payload's). The reader parses each
event it admits (Event.from_json: the JSON decoded and every field checked, about 27 us an event
on this machine, a tenth of the ingest process's CPU an event in session 15) and hands on the
fields it found (:func:`parsed`, marshal's bytes: 7 us to make the Event again from them,
:func:`event_of`), so that work is done on the other core, beside the ingest rather than in it;
a payload that does not parse goes on as it came (RAW), for the ingest process to refuse as it
always did. The reader writes through an asyncio pipe
transport, which keeps what the pipe cannot take yet in memory: :class:`FrameWriter` bounds that
and sheds past it (not acked: the till publishes the event again, as when the collector's queue
is full). The ingest process reads with :class:`FrameReader`, which takes whatever the pipe holds
in one read (up to 256 KiB, asyncio's), so the interpreter's lock is asked for once for many
events rather than a few times for each, as reading them from TLS is.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import marshal
import os
import struct
from collections.abc import Callable
from datetime import datetime

from terminal.protocol.messages import Event

log = logging.getLogger(__name__)

HEADER = struct.Struct(">BHI")
RAW, PARSED = 0, 1  # a frame's kind: the broker's payload, or an event's fields (parsed)
PIPE_BYTES = 1 << 20  # asked of the kernel (F_SETPIPE_SZ); fs.pipe-max-size is 1 MiB by default
AHEAD_BYTES = 64 << 20  # at most this much waits in the reader for the pipe (as max_queued_bytes)


def widen(fd: int) -> None:
    """Ask for a pipe of PIPE_BYTES (the default 64 KiB is some 60 events); keep the kernel's
    size if it refuses (an unprivileged process may not go past fs.pipe-max-size)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def frame(topic: str, payload: bytes, kind: int = RAW) -> bytes:
    name = topic.encode()
    return HEADER.pack(kind, len(name), len(payload)) + name + payload


def parsed(event: Event) -> bytes:
    """A PARSED frame's payload: ``event``'s fields, its time as the ISO text it came in (the
    same aware datetime again, fixed offset and all). The body is JSON's values only (null,
    booleans, integers, strings, lists, objects): marshal keeps them, their order and types,
    exactly."""
    return marshal.dumps((event.id, event.kind, event.store, event.terminal, event.seq,
                          event.epoch, event.wall_time.isoformat(), event.time_trusted,
                          event.body))


def event_of(payload: bytes) -> Event:
    """The Event a PARSED frame's payload carries (see :func:`parsed`): equal to what
    Event.from_json made of the till's bytes in the reader."""
    (id_, kind, store, terminal, seq, epoch, wall, trusted, body) = marshal.loads(payload)
    return Event(id_, kind, store, terminal, seq, epoch, datetime.fromisoformat(wall), trusted,
                 body)


class FrameWriter:
    """The reader's end: ``send`` a frame unless AHEAD_BYTES already wait for the pipe."""

    def __init__(self, transport: asyncio.WriteTransport, ahead: int = AHEAD_BYTES) -> None:
        self.transport, self.ahead = transport, ahead

    @classmethod
    async def open(cls, fd: int, lost: Callable[[], None]) -> FrameWriter:
        """The writing end ``fd``; ``lost()`` once the ingest process closed its end."""
        widen(fd)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(
            lambda: _Closing(lost), os.fdopen(fd, "wb", buffering=0))
        return cls(transport)

    def send(self, topic: str, payload: bytes, kind: int = RAW) -> bool:
        """False when the frame is shed: the ingest process is that far behind, or gone."""
        if self.transport.is_closing() or self.transport.get_write_buffer_size() > self.ahead:
            return False
        self.transport.write(frame(topic, payload, kind))
        return True

    def close(self) -> None:
        self.transport.close()


class FrameReader(asyncio.Protocol):
    """The ingest process's end: calls ``on_frame(topic, payload)`` for each whole RAW frame,
    ``on_event(topic, event)`` for each PARSED one (:func:`event_of`; without ``on_event``,
    ``on_frame`` gets its payload), and ``lost()`` when the reader's end closes (the reader
    stopped or died)."""

    def __init__(self, on_frame: Callable[[str, bytes], None], lost: Callable[[], None],
                 on_event: Callable[[str, Event], None] | None = None) -> None:
        self.on_frame, self.lost, self.on_event = on_frame, lost, on_event
        self._buffer = bytearray()

    @classmethod
    async def open(cls, fd: int, on_frame: Callable[[str, bytes], None],
                   lost: Callable[[], None],
                   on_event: Callable[[str, Event], None] | None = None) -> asyncio.ReadTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: cls(on_frame, lost, on_event),
                                                    os.fdopen(fd, "rb", buffering=0))
        return transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start, size = 0, len(buffer)
        view = memoryview(buffer)
        try:
            on_event = self.on_event
            while size - start >= HEADER.size:
                kind, named, carried = HEADER.unpack_from(buffer, start)
                end = start + HEADER.size + named + carried
                if end > size:
                    break
                begun, start = start + HEADER.size, end
                try:  # one frame's trouble is its own: the frames after it go on
                    topic, payload = str(view[begun:begun + named], "utf-8"), bytes(
                        view[end - carried:end])
                    if kind == PARSED and on_event is not None:
                        on_event(topic, event_of(payload))
                    else:
                        self.on_frame(topic, payload)
                except Exception:
                    log.exception("an event from the reader could not be taken")
        finally:
            view.release()
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()


class _Closing(asyncio.Protocol):
    def __init__(self, lost: Callable[[], None]) -> None:
        self.lost = lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()
