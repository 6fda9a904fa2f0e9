"""Version 14: on PostgreSQL a lot carries the sequence number of the entry that earned it
(``lot.earned_seq``, set by the database as the lot is inserted), and the expiry sweep's index
is in the sweep's own order, (expiry, earned_seq), among lots with points left.

The sweep takes lots due in the order every copy of a ledger shares: expiry, then the earning
entry's sequence number (terminal.loyalty.store.hotpath.DUE_LOTS). That order joins the entries,
so PostgreSQL sorted every due lot again for each chunk of the sweep: about 250 lots/s with a
million lots due at one instant (bench/bench_ingest.py --chain-scale). With the number on the
lot, a chunk is read off the index. SQLite (one shop) keeps the join: it swept 1 M lots in 34 s.
A lot whose entry is missing (none is made so) keeps NULL and is, as with the join, never due.
"""

from __future__ import annotations

from peewee import Database

from terminal.loyalty.store.models import LedgerEntry, Lot


def sqlite(db: Database) -> None:
    """Nothing: SQLite's sweep keeps joining the entries (terminal.loyalty.store.hotpath)."""


def postgresql(db: Database) -> None:
    lot, entry = Lot._meta.table_name, LedgerEntry._meta.table_name
    db.execute_sql(f"ALTER TABLE {lot} ADD COLUMN IF NOT EXISTS earned_seq BIGINT")
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION posterm_lot_earned_seq() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN NEW.earned_seq := (SELECT seq FROM {entry} WHERE id = NEW.id); "
        "RETURN NEW; END $$")
    db.execute_sql(f"DROP TRIGGER IF EXISTS {lot}_earned_seq ON {lot}")
    db.execute_sql(f"CREATE TRIGGER {lot}_earned_seq BEFORE INSERT ON {lot} "
                   "FOR EACH ROW EXECUTE FUNCTION posterm_lot_earned_seq()")
    # Lots made before this version (the lot's history trigger lets a new column be filled).
    db.execute_sql(f"UPDATE {lot} SET earned_seq = e.seq FROM {entry} e "
                   f"WHERE e.id = {lot}.id AND {lot}.earned_seq IS NULL")
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS lot_open_by_expiry_seq ON {lot} "
                   "(expires_us, earned_seq) WHERE remaining > 0 AND earned_seq IS NOT NULL")
