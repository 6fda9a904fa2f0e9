"""A time as the console, its API and the care pages show it: the wall time in the chain's zone
(or as given when no zone is), to the second. One format everywhere, so times compare by eye."""

from __future__ import annotations

from datetime import datetime, tzinfo

from terminal.loyalty.clock import from_micros

SHOWN = "%Y-%m-%d %H:%M:%S"


def shown_time(at: datetime, zone: tzinfo | None = None) -> str:
    return (at.astimezone(zone) if zone else at).strftime(SHOWN)


def shown_micros(us: int, zone: tzinfo | None = None) -> str:
    """A stored time (microseconds since the epoch, UTC) as shown."""
    return shown_time(from_micros(us), zone)
