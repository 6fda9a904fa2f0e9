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
    # A name search is a prefix match in name order (a range, ORDER BY name, id LIMIT 50):
    # an index in the "C" collation serves both the match and the order, whatever the
    # database's own collation (a million members: a common surname's 50,000 matches sorted
    # took the page over its budget; the index reads 50 rows).
    member = Member._meta.table_name
    db.execute_sql(f"DROP INDEX IF EXISTS {member}_name_prefix")
    db.execute_sql(f'CREATE INDEX IF NOT EXISTS {member}_name_c ON {member} '
                   '(name COLLATE "C", id)')
