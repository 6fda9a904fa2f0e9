"""Version 30 (PostgreSQL): the ledger entries' index by sale holds only the entries of a sale.

``ledger_entry_sale_id`` indexed every entry, ``sale_id`` NULL ones included: the expiry sweep's
entries (one a member a sweep: a million at chain scale), adjustments, bonuses. Every read by
sale names one (``sale_id = ...``, ``sale_id = ANY(...)``: a refund's, the batch's), so the index
``ledger_entry_by_sale`` keeps only ``sale_id IS NOT NULL``, which PostgreSQL proves from those
conditions, generic plans included (tests/hq/test_upgrade.py). An entry without a sale writes
one index entry fewer: the sweep's COPY of 100,000 entries 4 -> 3 WAL records a row, 11.3 ->
10.2 buffer hits (bench/sweep_probe.py chain, 03:25 UTC, load 9.5). The new index is built
before the old one goes, in the migration's transaction (on a large ledger it takes the time of
one pass over ``ledger_entry``, with its writes waiting). SQLite keeps the store's own schema.
"""

from __future__ import annotations

from peewee import Database


def sqlite(db: Database) -> None:
    """Nothing: the store's own schema, as on every till."""


def postgresql(db: Database) -> None:
    db.execute_sql("CREATE INDEX IF NOT EXISTS ledger_entry_by_sale ON ledger_entry (sale_id) "
                   "WHERE sale_id IS NOT NULL")
    db.execute_sql("DROP INDEX IF EXISTS ledger_entry_sale_id")
