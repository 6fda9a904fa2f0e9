"""Version 13: the chain sequence in blocks from a PostgreSQL sequence (issue 11).

Each write transaction on PostgreSQL takes the next block of ``SEQ_BLOCK`` sequence numbers
(``nextval('hq_seq_block')``, see :data:`terminal.hq.database.STATEMENTS`) instead of reading
and writing one ``meta`` row that every writer had to wait for. The sequence starts above every
number already handed out; ``meta`` keeps the highest number committed (moved only upwards).
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.database import SEQ_BLOCK
from terminal.loyalty.store.models import MODELS


def sqlite(db: Database) -> None:
    """Nothing: SQLite (one shop) keeps one writer and its ``meta`` counter."""


def postgresql(db: Database) -> None:
    highest = 0
    for model in MODELS:
        if "seq" in model._meta.fields and db.table_exists(model._meta.table_name):
            row = db.execute_sql(f"SELECT max(seq) FROM {model._meta.table_name}").fetchone()
            highest = max(highest, int(row[0] or 0))
    meta = db.execute_sql("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    highest = max(highest, int(meta[0] or 0) if meta else 0)
    # Block 0 holds 1 .. SEQ_BLOCK: a new database numbers its first writer's rows as SQLite does.
    start = 0 if highest == 0 else highest // SEQ_BLOCK + 1
    db.execute_sql(f"CREATE SEQUENCE IF NOT EXISTS hq_seq_block MINVALUE 0 START {start}")
    db.execute_sql(f"SELECT setval('hq_seq_block', {start}, false)")
