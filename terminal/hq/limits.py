"""What one terminal may ask of HQ, per second and in bytes (issue 16, break 5).

One till pipelining member lookups (1.1 million in 90 s) left every honest lookup unanswered,
stopped ingest for over a minute and grew the collector to 1 GB: every request became a task
waiting for the ledger's one thread, and every event a place in an unbounded queue. Here each
terminal (the topic the broker vouches for) has a token bucket for member requests and one for
events; what is over its rate is dropped before it is parsed or queued (a dropped event is not
acked, so an honest till publishes it again; a dropped request times out at the till, which falls
back to its offline allowance). The queue of events waiting to be applied is bounded as a whole,
and so is every message's size.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_EVENT_BYTES = 256 * 1024  # a sale of 500 lines with long names is about 80 KB
MAX_REQUEST_BYTES = 4 * 1024  # a member request is about 200 bytes
MAX_TERMINALS = 100_000  # buckets kept; the least recently seen are forgotten beyond this


class RateLimiter:
    """A token bucket per key: ``rate`` a second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self.dropped = 0

    def allow(self, key: tuple[str, str]) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > MAX_TERMINALS:
            self._buckets.popitem(last=False)
        if not allowed:
            self.dropped += 1
        return allowed
