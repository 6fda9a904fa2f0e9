"""Version 29 (PostgreSQL): the ledger's references checked once a statement, not once a row.

An allocation names its entry and its lot, an entry its member. Foreign keys checked each new row
by a query of its own that also locks the row it finds (``SELECT ... FOR KEY SHARE``: a write of
that row's page and a WAL record): the expiry sweep's COPY of 1,000 allocations ran 2,000 such
queries and locked 2,000 rows it was about to write anyway (bench/sweep_probe.py at 100,000
lots: 20 buffer hits and 5 WAL records an allocation, 15 and 5 an entry). Those locks exist so
that nobody deletes or renumbers a row while another transaction points at it. Here nobody can,
whoever points at it:

* ``ledger_entry`` refuses UPDATE, DELETE and TRUNCATE (version 3), and so does ``allocation``;
* ``lot`` refuses DELETE, TRUNCATE and any change of its ``id`` (version 3, ``lot_history``);
* ``member`` now refuses DELETE, TRUNCATE and a change of its ``id`` (``member_kept``): no code
  deletes a member (erasure blanks the person's data, a merge keeps both rows).

So the foreign keys ``allocation_entry_id_fkey``, ``allocation_lot_id_fkey`` and
``ledger_entry_member_id_fkey`` are replaced by a statement trigger on each table
(``allocation_refs``, ``ledger_entry_refs``, AFTER INSERT ... REFERENCING NEW TABLE) that refuses
the statement when any row it inserted names an entry, lot or member not in the ledger, when the
foreign key's own check ran (at the statement's end), by one anti-join over the statement's rows
through the primary keys, with no lock. What a writer sees is the same, but the error: a
``RaiseException`` naming what is missing instead of a ``ForeignKeyViolation`` (no code catches
either). The difference left: a foreign key's check waits for a transaction that inserted the
referenced row and has not committed, and then passes or fails; this check does not see that row
and fails. Every writer inserts an allocation's entry, and an entry's member, in its own
transaction or one committed before, and the sweep's lots are committed before it reads them.
tests/hq/test_upgrade.py checks each refusal, by INSERT and by COPY. SQLite keeps the store's own
schema with its foreign keys (the same rows on both: tests/hq/test_ingest_batches.py).
"""

from __future__ import annotations

from peewee import Database

# (table, trigger function, the foreign keys it replaces, [(column, table, what it names)])
CHECKS = (
    ("allocation", "posterm_allocation_refs",
     ("allocation_entry_id_fkey", "allocation_lot_id_fkey"),
     (("entry_id", "ledger_entry", "an entry"), ("lot_id", "lot", "a lot"))),
    ("ledger_entry", "posterm_ledger_entry_refs", ("ledger_entry_member_id_fkey",),
     (("member_id", "member", "a member"),)),
)


def sqlite(db: Database) -> None:
    """Nothing: the store's own schema and foreign keys, as on every till."""


def postgresql(db: Database) -> None:
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION posterm_member_kept() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'a member is never deleted nor renumbered: the ledger names it'; "
        "END $$")
    db.execute_sql("DROP TRIGGER IF EXISTS member_kept ON member")
    db.execute_sql("CREATE TRIGGER member_kept BEFORE DELETE OR TRUNCATE ON member "
                   "FOR EACH STATEMENT EXECUTE FUNCTION posterm_member_kept()")
    db.execute_sql("DROP TRIGGER IF EXISTS member_kept_id ON member")
    db.execute_sql("CREATE TRIGGER member_kept_id BEFORE UPDATE OF id ON member FOR EACH ROW "
                   "WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION posterm_member_kept()")
    for table, function, keys, columns in CHECKS:
        checks = " ".join(
            f"IF EXISTS (SELECT 1 FROM posterm_new n WHERE NOT EXISTS (SELECT 1 FROM {target} t "
            f"WHERE t.id = n.{column})) THEN RAISE EXCEPTION '{table} names {what} that is not "
            f"in the ledger'; END IF;" for column, target, what in columns)
        db.execute_sql(f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
                       f"LANGUAGE plpgsql AS $$ BEGIN {checks} RETURN NULL; END $$")
        db.execute_sql(f"DROP TRIGGER IF EXISTS {table}_refs ON {table}")
        db.execute_sql(f"CREATE TRIGGER {table}_refs AFTER INSERT ON {table} "
                       "REFERENCING NEW TABLE AS posterm_new FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {function}()")
        for key in keys:
            db.execute_sql(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {key}")
