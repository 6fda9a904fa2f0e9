"""Admitted events from the event reader to the ingest process, over a pipe.

A frame is the event's topic and payload as they came from the broker, each behind its length
(``>HI``: the topic's bytes, then the payload's). The reader writes through an asyncio pipe
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
import os
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

HEADER = struct.Struct(">HI")
PIPE_BYTES = 1 << 20  # asked of the kernel (F_SETPIPE_SZ); fs.pipe-max-size is 1 MiB by default
AHEAD_BYTES = 64 << 20  # at most this much waits in the reader for the pipe (as max_queued_bytes)


def widen(fd: int) -> None:
    """Ask for a pipe of PIPE_BYTES (the default 64 KiB is some 60 events); keep the kernel's
    size if it refuses (an unprivileged process may not go past fs.pipe-max-size)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def frame(topic: str, payload: bytes) -> bytes:
    name = topic.encode()
    return HEADER.pack(len(name), len(payload)) + name + payload


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

    def send(self, topic: str, payload: bytes) -> bool:
        """False when the frame is shed: the ingest process is that far behind, or gone."""
        if self.transport.is_closing() or self.transport.get_write_buffer_size() > self.ahead:
            return False
        self.transport.write(frame(topic, payload))
        return True

    def close(self) -> None:
        self.transport.close()


class FrameReader(asyncio.Protocol):
    """The ingest process's end: calls ``on_frame(topic, payload)`` for each whole frame, and
    ``lost()`` when the reader's end closes (the reader stopped or died)."""

    def __init__(self, on_frame: Callable[[str, bytes], None], lost: Callable[[], None]) -> None:
        self.on_frame, self.lost = on_frame, lost
        self._buffer = bytearray()

    @classmethod
    async def open(cls, fd: int, on_frame: Callable[[str, bytes], None],
                   lost: Callable[[], None]) -> asyncio.ReadTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: cls(on_frame, lost),
                                                    os.fdopen(fd, "rb", buffering=0))
        return transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start, size = 0, len(buffer)
        view = memoryview(buffer)
        try:
            while size - start >= HEADER.size:
                named, carried = HEADER.unpack_from(buffer, start)
                end = start + HEADER.size + named + carried
                if end > size:
                    break
                begun, start = start + HEADER.size, end
                try:  # one frame's trouble is its own: the frames after it go on
                    self.on_frame(str(view[begun:begun + named], "utf-8"),
                                  bytes(view[end - carried:end]))
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
