"""Version 12: the terminals' X and Z reports collected at HQ (``hq_day_report``, issue 13),
append-only like the events they came in."""

from __future__ import annotations

from peewee import Database

from terminal.hq.database import append_only
from terminal.hq.models import DayReport
from terminal.loyalty.store.binding import bound


def both(db: Database) -> None:
    with bound(db, [DayReport]):
        db.create_tables([DayReport], safe=True)
    append_only(db, [DayReport])
