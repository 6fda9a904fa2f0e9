"""Version 34: ``hq_hold_ask`` finds each of its counts' holds by a key (PostgreSQL).

Migration 33's statement counted the till's and the member's pending holds with "pending, not
timed out" in each count's WHERE, so the planner could read them through migration 25's index
of the pending holds by expiry, the upkeep's: it takes "expires after now" for a third of the
pending holds, where it is every one of them, and that index's order follows the table's. Under
a backlog whose redemptions held HQ holds (10,000 pending, posted as their sales came off the
queue) each hold then read every pending hold two to five times: 3.9-7.9 ms a statement against
0.3 (auto_explain of the function during bench_ingest's (c) with ``--c-backlog-holds``,
docs/hq.md, session 18 (c)), and a connection kept that plan until the next ANALYZE.

Now each count's WHERE names only its key, the member's card hash or the till's pending holds by
store and terminal (migration 25's ``member_hold_till_pending``), and tests the rest in a CASE:
the same rows counted, the same sums (:data:`terminal.hq.holds.ASK` as it is at this version).
SQLite's holds take the full way (``holds.READ``, the same counts): nothing to do there.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import v0033_hold_function as v33

_FROM = "e.state AS e_state, "
_UNTIL = ", (SELECT COALESCE(SUM(l.remaining)"
COUNTS_33 = v33.ASK[v33.ASK.index(_FROM) + len(_FROM):v33.ASK.index(_UNTIL)]
COUNTS = (
    '(SELECT COUNT(CASE WHEN h.card_hash <> q.card_hash AND h.expires_us > q.at_us THEN 1 END)'
    ' FROM member_hold h WHERE h.store = q.store AND h.terminal = q.terminal AND h.state ='
    " 'pending') AS till_count, (SELECT COALESCE(SUM(CASE WHEN h.card_hash <> q.card_hash AND"
    ' h.expires_us > q.at_us THEN h.points END), 0) FROM member_hold h WHERE h.store = q.store'
    " AND h.terminal = q.terminal AND h.state = 'pending') AS till_points, (SELECT COUNT(CASE"
    " WHEN h.state = 'pending' AND h.expires_us > q.at_us AND NOT (h.store = q.store AND"
    ' h.terminal = q.terminal) THEN 1 END) FROM member_hold h WHERE h.card_hash = q.card_hash)'
    ' AS member_count, (SELECT COUNT(CASE WHEN h.store = q.store AND h.terminal = q.terminal'
    ' AND h.created_us > q.at_us - 3600000000 THEN 1 END) FROM member_hold h WHERE h.card_hash'
    " = q.card_hash) AS asked, (SELECT COALESCE(SUM(CASE WHEN h.state = 'pending' AND"
    ' h.expires_us > q.at_us THEN h.points END), 0) FROM member_hold h WHERE h.card_hash ='
    ' q.card_hash) AS pending, (SELECT COALESCE(SUM(CASE WHEN h.store = q.store AND h.terminal'
    " = q.terminal AND h.state = 'pending' AND h.expires_us > q.at_us THEN h.points END), 0)"
    ' FROM member_hold h WHERE h.card_hash = q.card_hash) AS replaced'
)
ASK = v33.ASK.replace(COUNTS_33, COUNTS)


def sqlite(db: Database) -> None:
    """Nothing: SQLite's holds take the full way (one shop, no round trips)."""


def postgresql(db: Database) -> None:
    db.execute_sql(v33.function(ASK))
