"""Version 26: settled holds are found in the order they settled, for the upkeep to delete them.

``member_hold`` kept every hold ever made, posted and voided too: one row a redemption, for
ever. Holds are not the ledger (a redemption's record is its ledger entries and its applied
event; no append-only trigger covers ``member_hold``), so the upkeep deletes the holds settled
more than the trust policy's ``[holds] keep_days`` ago (``ChainLedger.prune_holds``), oldest
first, a round's worth at a time. This partial index holds only the settled holds, by when they
settled, so finding the oldest reads only those.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import apply

INDEXES = (
    "CREATE INDEX IF NOT EXISTS member_hold_settled ON member_hold (settled_us) "
    "WHERE state <> 'pending'",
)


def both(db: Database) -> None:
    apply(db, statements=INDEXES)
