"""Version 4: each applied event's span of the chain ledger's sequence (``first_seq``,
``last_seq``: a statement names the store and terminal behind each entry), on a database made
before the console's statement needed it."""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import add_columns
from terminal.hq.models import AppliedEvent


def both(db: Database) -> None:
    add_columns(db, AppliedEvent, AppliedEvent.first_seq, AppliedEvent.last_seq)
