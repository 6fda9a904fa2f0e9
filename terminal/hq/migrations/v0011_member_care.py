"""Version 11: member care's tables (terminal.hq.care.models): contacts, the consent record
(append-only), campaigns and the message outbox."""

from __future__ import annotations

from peewee import Database

from terminal.hq.care.models import APPEND_ONLY, CARE_MODELS
from terminal.hq.database import append_only
from terminal.loyalty.store.binding import bound


def both(db: Database) -> None:
    with bound(db, CARE_MODELS):
        db.create_tables(CARE_MODELS, safe=True)
    append_only(db, APPEND_ONLY)
