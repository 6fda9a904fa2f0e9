"""Creating the console's tables (idempotent), the audit log's append-only triggers
(:func:`terminal.hq.database.append_only`) and the indexes its searches need, on SQLite and
PostgreSQL."""

from __future__ import annotations

from peewee import Database, PostgresqlDatabase

from terminal.hq.console.models import APPEND_ONLY, CONSOLE_MODELS
from terminal.hq.database import append_only
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import Member


def ensure_schema(db: Database) -> None:
    with bound(db, CONSOLE_MODELS), db.atomic():
        db.create_tables(CONSOLE_MODELS, safe=True)
        append_only(db, APPEND_ONLY)
        if isinstance(db, PostgresqlDatabase):
            _postgres_extras(db)


def _postgres_extras(db: Database) -> None:
    # A name search is a prefix match (LIKE 'x%'): text_pattern_ops lets it use an index
    # whatever the database's collation (1M members: a scan is seconds, the index is ms).
    member = Member._meta.table_name
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS {member}_name_prefix "
                   f"ON {member} (name text_pattern_ops)")
