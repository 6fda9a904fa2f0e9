"""Version 19: what the member figures, the lists and ``expiring`` read at a million members
(issue 13), kept by ``terminal.hq.rollup`` (a database rolled up before is rolled up again).

- ``agg_member_day`` gains the chain's rows (store ``''``: a member's counted sales of a day at
  any store) and ``prev_us``: the time of the member's last counted sale (at that store, or in
  the chain) on an earlier day, NULL for its first day. A member's last day before any ``to``
  is then one row: its row before ``to`` if it bought nothing since, else the first row from
  ``to`` on names it (``prev_us``), so dormancy is counted from the rows after ``to`` (none
  when ``to`` is today) rather than from every member's days.
- ``agg_member`` gains ``window_fen``: on the chain's row, the member's counted spend in the
  tier window the roll-up keeps (ending with the current local day: ``agg_state`` says which),
  moved day by day, so the members near the next tier are read from an index of it.
- ``agg_lot_day``: per local day of a lot's last instant before it expires and issuing store,
  the points left in the lots dated on a trusted clock (their points plus their allocations);
  ``agg_lot_dated`` queues, by trigger, a lot whose expiry or dating changes (a lot earned on
  an untrusted clock is dated later: only then does the roll-up count it; until then a report
  reads it from ``lot`` through the partial index ``lot_undated``).
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import apply, queue_on_update

COLUMNS = (("agg_member_day", "prev_us", "BIGINT"),
           ("agg_member", "window_fen", "BIGINT NOT NULL DEFAULT 0"))
STATEMENTS = (
    "DROP INDEX IF EXISTS agg_member_day_by_day",
    "DROP INDEX IF EXISTS agg_member_day_by_store",
    """CREATE INDEX IF NOT EXISTS agg_member_day_by_store
        ON agg_member_day (store, day, member, fen, prev_us)""",
    "CREATE INDEX IF NOT EXISTS agg_member_by_last ON agg_member (store, last_us, member)",
    """CREATE INDEX IF NOT EXISTS agg_member_by_window
        ON agg_member (store, window_fen, member)""",
    """CREATE TABLE IF NOT EXISTS agg_lot_day (day INTEGER NOT NULL, store TEXT NOT NULL,
        points BIGINT NOT NULL, PRIMARY KEY (day, store))""",
    """CREATE TABLE IF NOT EXISTS agg_lot_dated (lot_id TEXT NOT NULL,
        moved BOOLEAN NOT NULL)""",
)
# Queued when a lot's dating or expiry changes: ``moved`` false for a lot dated now (it was not
# in the roll-up), true for anything else (the roll-up of lots is then computed again).
WHEN = ("OLD.dated_trusted IS DISTINCT FROM NEW.dated_trusted "
        "OR OLD.expires_us IS DISTINCT FROM NEW.expires_us")
MOVED = "NOT (NOT OLD.dated_trusted AND NEW.dated_trusted)"


def _both(db: Database) -> None:
    """What the two kinds share: the columns, the statements and the queue's trigger."""
    apply(db, COLUMNS, STATEMENTS)
    queue_on_update(db, trigger="lot_agg_dated", function="posterm_agg_lot_dated", table="lot",
                    columns="dated_trusted, expires_us", when=WHEN,
                    insert=f"INSERT INTO agg_lot_dated (lot_id, moved) VALUES (NEW.id, {MOVED})")


def sqlite(db: Database) -> None:
    _both(db)
    db.execute_sql("CREATE INDEX IF NOT EXISTS lot_undated ON lot (id) WHERE dated_trusted = 0")


def postgresql(db: Database) -> None:
    _both(db)
    db.execute_sql("CREATE INDEX IF NOT EXISTS lot_undated ON lot (id) WHERE NOT dated_trusted")
