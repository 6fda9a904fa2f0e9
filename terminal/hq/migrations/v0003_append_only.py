"""Version 3: the append-only promise kept by the database, and the expiry sweep's index.

UPDATE and DELETE are refused on the ledger's history (entries, allocations, sales and their
lines, refunds, exchanges, the audit trail, end-of-day reports), on HQ's record of applied events
and member operations; a lot may change only what is left of it and its expiry (when an untrusted
clock's lot gets its date), never whose it is, when it was earned or what it held, and is never
deleted. On SQLite the store's own history made the triggers of its tables already.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.database import append_only
from terminal.hq.models import HQ_APPEND_ONLY
from terminal.loyalty.store.models import APPEND_ONLY, Lot


def sqlite(db: Database) -> None:
    append_only(db, HQ_APPEND_ONLY)


def postgresql(db: Database) -> None:
    append_only(db, (*APPEND_ONLY, *HQ_APPEND_ONLY))
    lot = Lot._meta.table_name
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION posterm_lot_history() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.member_id <> OLD.member_id "
        "OR NEW.earned_us <> OLD.earned_us OR NEW.points <> OLD.points THEN "
        "RAISE EXCEPTION 'a lot''s history is append-only: only remaining and expiry change'; "
        "END IF; RETURN NEW; END $$")
    db.execute_sql(f"DROP TRIGGER IF EXISTS {lot}_history ON {lot}")
    db.execute_sql(f"CREATE TRIGGER {lot}_history BEFORE UPDATE OR DELETE ON {lot} "
                   "FOR EACH ROW EXECUTE FUNCTION posterm_lot_history()")
    db.execute_sql(f"DROP TRIGGER IF EXISTS {lot}_no_truncate ON {lot}")
    db.execute_sql(f"CREATE TRIGGER {lot}_no_truncate BEFORE TRUNCATE ON {lot} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION posterm_append_only()")
    # The expiry sweep reads only lots with points left, in expiry order (as on SQLite).
    db.execute_sql(f"CREATE INDEX IF NOT EXISTS lot_open_by_expiry ON {lot} (expires_us) "
                   "WHERE remaining > 0")
