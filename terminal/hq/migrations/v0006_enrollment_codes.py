"""Version 6: the one-time enrollment codes HQ issues for new terminals (terminal.hq.enrollment),
kept as hashes, spent once."""

from __future__ import annotations

from peewee import Database

from terminal.hq.models import EnrollmentCode
from terminal.loyalty.store.binding import bound


def both(db: Database) -> None:
    with bound(db, [EnrollmentCode]):
        db.create_tables([EnrollmentCode], safe=True)
