"""Time that can lie (DESIGN promise 6).

A Pi has no real-time clock: until NTP syncs, its wall time may be hours or decades off. Every
operation carries a :class:`Moment`: the wall time, whether it was trusted, and the floor, the
latest trusted time seen (from NTP, HQ acks or bundles). The rules that depend on the calendar
read time only through the methods here, so the policy sits in one place:

- expiry runs as of the clock when trusted, else as of the floor, so a lot never expires early;
- a lot earned on an untrusted clock is dated no earlier than the floor (and is re-dated later,
  when trusted time returns, see the store);
- a promotion or birthday window applies on an untrusted clock only if it holds both at the clock
  reading and at the floor; with no floor at all, no windowed bonus applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Moment:
    at: datetime  # zone-aware wall time as the terminal read it
    trusted: bool = True
    floor: datetime | None = None  # the latest trusted time seen, if any

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a Moment needs a zone-aware time")

    @property
    def expiry_as_of(self) -> datetime | None:
        """The time up to which lots may expire; None when nothing may expire yet."""
        if self.trusted:
            return self.at
        return self.floor

    @property
    def earn_time(self) -> datetime:
        """The date a new lot's expiry counts from: never before the floor."""
        if self.trusted or self.floor is None:
            return self.at
        return max(self.at, self.floor)

    @property
    def window_checks(self) -> tuple[datetime, ...]:
        """The times at which a promotion window must hold for it to apply."""
        if self.trusted:
            return (self.at,)
        if self.floor is None:
            return ()
        return (self.at, self.floor)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """A zone-aware time as whole microseconds since the Unix epoch (UTC)."""
    if moment.tzinfo is None:  # a naive time is local time, as astimezone() takes it
        moment = moment.astimezone(UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)
