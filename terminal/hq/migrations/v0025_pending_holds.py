"""Version 25: the pending holds are found through indexes of their own, not by reading every
hold ever made.

A hold request counts the till's pending holds on other members and their points
(``holds.READ``, HQ's bounds), and the upkeep voids the pending holds that timed out
(``ChainLedger.void_expired_holds``). ``member_hold`` keeps every hold, posted and voided too,
and was indexed by card hash only, so both read the whole table: with 20,000 holds made the
hold's one statement took 10.7 ms (two sequential scans of 5 ms), 0.22 ms with these partial
indexes (EXPLAIN ANALYZE, docs/hq.md); under a backlog of redemptions the table grows by one
hold a redemption, so each hold got slower the longer HQ ran. The indexes hold the pending
holds only (a few per till), so they stay small whatever the history.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import apply

INDEXES = (
    "CREATE INDEX IF NOT EXISTS member_hold_till_pending ON member_hold (store, terminal) "
    "WHERE state = 'pending'",
    "CREATE INDEX IF NOT EXISTS member_hold_pending_expiry ON member_hold (expires_us) "
    "WHERE state = 'pending'",
)


def both(db: Database) -> None:
    apply(db, statements=INDEXES)
