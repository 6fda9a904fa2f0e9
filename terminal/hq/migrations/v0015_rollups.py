"""Version 15: the reports' roll-ups (issue 13), tables kept current by ``terminal.hq.rollup``.

- ``agg_member_day``: per member, store and local day, the counted member sales' net fen and the
  time of the last one (a sale wholly refunded, whenever, is not there);
- ``agg_member``: per member and store (``''``: the chain) its first and last day of a counted
  sale, and the time of the last;
- ``agg_points_day``: per local day, store (``HQ`` for HQ's own entries) and entry kind, the
  points of the ledger's entries;
- ``agg_settle_day``: per local day of the redemption (or restore), the issuing store of the lot
  and the redeeming store, the points their allocations moved;
- ``agg_state``: the roll-up's zone and, on SQLite, the sequence it has read up to;
- PostgreSQL: ``agg_queue``, the spans of the chain sequence each INSERT into ``sale``,
  ``refund`` or ``ledger_entry`` wrote, queued by statement-level triggers in the writing
  transaction. The collectors number their rows from blocks of the sequence taken in the order
  their transactions began, not committed, so a watermark on the sequence would pass rows still
  to commit below it; the queue holds each committed statement's span once, whatever the order.
"""

from __future__ import annotations

from peewee import Database

TABLES = (
    """CREATE TABLE IF NOT EXISTS agg_member_day (member TEXT NOT NULL, store TEXT NOT NULL,
        day INTEGER NOT NULL, fen BIGINT NOT NULL, last_us BIGINT NOT NULL,
        PRIMARY KEY (member, store, day))""",
    "CREATE INDEX IF NOT EXISTS agg_member_day_by_day ON agg_member_day (day, member, fen)",
    """CREATE INDEX IF NOT EXISTS agg_member_day_by_store
        ON agg_member_day (store, day, member, fen)""",
    """CREATE TABLE IF NOT EXISTS agg_member (member TEXT NOT NULL, store TEXT NOT NULL,
        first_day INTEGER NOT NULL, last_day INTEGER NOT NULL, last_us BIGINT NOT NULL,
        PRIMARY KEY (member, store))""",
    "CREATE INDEX IF NOT EXISTS agg_member_first ON agg_member (store, first_day)",
    "CREATE INDEX IF NOT EXISTS agg_member_last ON agg_member (store, last_day, first_day)",
    """CREATE TABLE IF NOT EXISTS agg_points_day (day INTEGER NOT NULL, store TEXT NOT NULL,
        kind TEXT NOT NULL, points BIGINT NOT NULL, PRIMARY KEY (day, store, kind))""",
    """CREATE TABLE IF NOT EXISTS agg_settle_day (day INTEGER NOT NULL, issued TEXT NOT NULL,
        redeemed TEXT NOT NULL, points BIGINT NOT NULL, PRIMARY KEY (day, issued, redeemed))""",
    "CREATE TABLE IF NOT EXISTS agg_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
QUEUED = ("sale", "refund", "ledger_entry")


def sqlite(db: Database) -> None:
    for statement in TABLES:
        db.execute_sql(statement)


def postgresql(db: Database) -> None:
    sqlite(db)
    db.execute_sql("CREATE TABLE IF NOT EXISTS agg_queue (id BIGSERIAL PRIMARY KEY, "
                   "first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL)")
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION posterm_agg_queue() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO agg_queue (first_seq, last_seq) SELECT min(seq), max(seq) FROM added "
        "HAVING count(*) > 0; RETURN NULL; END $$")
    for table in QUEUED:
        db.execute_sql(f"DROP TRIGGER IF EXISTS {table}_agg_queue ON {table}")
        db.execute_sql(f"CREATE TRIGGER {table}_agg_queue AFTER INSERT ON {table} "
                       "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
                       "EXECUTE FUNCTION posterm_agg_queue()")
