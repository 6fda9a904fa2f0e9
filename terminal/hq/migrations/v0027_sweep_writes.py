"""Version 27 (PostgreSQL): the expiry sweep writes fewer index entries and runs no trigger per
lot it empties.

At chain scale the sweep's time is its writes (bench/sweep_probe.py, pg_stat_statements): a chunk
of 10,000 lots inserts 10,000 entries and allocations and empties 10,000 lots, and emptying a
lot is not a HOT update (``remaining`` is in the partial indexes' predicates), so each new lot
version goes into every index whose predicate it meets. Two of those indexes repeat another's
leading column and serve no query the other does not:

* ``lot_member_id`` (member_id), beside ``lot_member_id_expires_us`` (member_id, expires_us);
* ``ledger_entry_member_id`` (member_id), beside ``ledger_entry_member_id_seq``
  (member_id, seq).

Both are dropped. And ``posterm_lot_history`` (version 3), which refuses a change of a lot's
owner, earning time or points, ran as a row trigger on every UPDATE of ``lot``: it now fires
only for an UPDATE that names one of those columns (``UPDATE OF``), which no writer does but a
forbidden one, and for DELETE; the sweep's and ingest's ``SET remaining = ...`` run no trigger.
The refusal itself is unchanged (tests/hq/test_upgrade.py and the append-only tests).
SQLite keeps the store's own schema.
"""

from __future__ import annotations

from peewee import Database


def sqlite(db: Database) -> None:
    """Nothing: the store's own schema, as on every till."""


def postgresql(db: Database) -> None:
    db.execute_sql("DROP INDEX IF EXISTS lot_member_id")
    db.execute_sql("DROP INDEX IF EXISTS ledger_entry_member_id")
    db.execute_sql("DROP TRIGGER IF EXISTS lot_history ON lot")
    db.execute_sql("CREATE TRIGGER lot_history BEFORE UPDATE OF id, member_id, earned_us, points "
                   "OR DELETE ON lot FOR EACH ROW EXECUTE FUNCTION posterm_lot_history()")
