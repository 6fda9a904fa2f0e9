"""Record ids: UUIDs minted before anything is sent (DESIGN promise 3), time-ordered.

A version 7 UUID (RFC 9562) starts with the Unix time in milliseconds, so new ledger rows land
at the right-hand edge of their primary-key B-tree instead of at random pages of it: at ten
million entries that is the difference between appending and a cache miss per insert. The other
74 bits are random, so ids stay unguessable and unique across terminals.
"""

from __future__ import annotations

import os
import threading
import time

# The random bits come from os.urandom a few kilobytes at a time: a call of its own per id
# releases the interpreter lock, and beside a busy thread (HQ's collector: the MQTT client's,
# the member requests') getting it back cost about 30 us an id (cProfile, bench_ingest.py
# --in-process: 9,182 ids in 0.27 s), more than the rest of the id.
_CHUNK = 4096
_random = threading.local()  # .bytes, .at: the bytes of this thread's chunk and the next


def _reset() -> None:
    """In a forked child: never hand out what the parent's chunks may still hand out."""
    global _random
    _random = threading.local()


os.register_at_fork(after_in_child=_reset)


def _random_bytes(count: int) -> bytes:
    local = _random
    at = getattr(local, "at", _CHUNK)
    if at + count > _CHUNK:
        local.bytes, at = os.urandom(_CHUNK), 0
    local.at = at + count
    return local.bytes[at:at + count]


def new_id() -> str:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(_random_bytes(10), "big")  # 80 bits, 74 used
    value = (millis & (2**48 - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= (rand >> 62 & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # the RFC 4122 variant
    value |= rand & (2**62 - 1)  # rand_b, 62 bits
    h = f"{value:032x}"  # as str(uuid.UUID(int=value)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
