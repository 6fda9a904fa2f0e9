"""Version 7: the HQ console's tables (users, sessions, API tokens, sign-in failures, its audit
log, the cookie key, commands to terminals and their backlog reports), its audit log append-only,
and on PostgreSQL the index a member name search reads (docs/console.md)."""

from __future__ import annotations

from peewee import Database

from terminal.hq.console.models import APPEND_ONLY, CONSOLE_MODELS
from terminal.hq.database import append_only
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import Member


def sqlite(db: Database) -> None:
    with bound(db, CONSOLE_MODELS):
        db.create_tables(CONSOLE_MODELS, safe=True)
    append_only(db, APPEND_ONLY)


def postgresql(db: Database) -> None:
    sqlite(db)
    # A name search is a prefix range in name order (ORDER BY name, id LIMIT 50) in the "C"
    # collation: this index serves both the range and the order, whatever the database's own
    # collation (a common surname's tens of thousands of matches are never sorted). An index of
    # an earlier console, text_pattern_ops for LIKE, goes.
    member = Member._meta.table_name
    db.execute_sql(f"DROP INDEX IF EXISTS {member}_name_prefix")
    db.execute_sql(f'CREATE INDEX IF NOT EXISTS {member}_name_c ON {member} '
                   '(name COLLATE "C", id)')
