"""Version 31: what a till's catch-up of member states reads (terminal.hq.member_ops.publish,
``catch_up``).

``published_state.payload`` keeps each card's signed state as it was published, so the
member-request side (which holds no signing key) answers a till's ``states`` request with the
very messages the publisher sent. Rows published before this version have none: they are
deleted, so the publishers send every state once more, with it (what ``posterm-hq member
republish`` does). ``card_state_by_version`` lets the catch-up read the states above a version in
order, a page at a time, without reading the whole table.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import add_columns
from terminal.hq.models import PublishedState


def both(db: Database) -> None:
    add_columns(db, PublishedState, PublishedState.payload)
    db.execute_sql("DELETE FROM published_state WHERE payload IS NULL")
    db.execute_sql("CREATE INDEX IF NOT EXISTS card_state_by_version ON card_state (version)")
