"""Version 33: a hold in one statement, one pass (PostgreSQL): ``hq_hold_ask``.

A hold on PostgreSQL was the member's advisory lock and :data:`terminal.hq.holds.ASK` sent
together, in one transaction (ChainLedger._hold_at_once: with the BEGIN and the COMMIT, four
statements; terminal.hq.loop_holds: in the pipeline's implicit transaction, two statements and
seven passes of psycopg's async pipeline through the collector's event loop). The function takes
the lock and then runs that statement, so a hold is one statement sent in autocommit, answered
once: ``SELECT * FROM hq_hold_ask(lock key, ASK's fifteen parameters)``.

It is PL/pgSQL and VOLATILE: in READ COMMITTED each of its statements runs with a snapshot of
its own, taken when it starts, so the statement reads what was committed up to the lock's
grant, as the separate statements did (a batch holding the member commits before the lock is
granted, and its rows are read). The lock is the members' lock ``(0x6D656D62, key)``
(terminal.hq.database.member_locks, ``_PG_MEMBER_LOCKS``), the key the member's
(``member_key``, computed by the caller: blake2b is not in PostgreSQL); NULL takes no lock (a
request that names no member reads nothing to grant). The statement is ASK as it was at this
version, its parameters numbered from $2; ``tests/hq/test_hold_function.py`` checks the function
runs today's ``holds.ASK``: a change of ASK is a migration that replaces the function.

SQLite (one shop, no round trips) keeps the full way: nothing to do.
"""

from __future__ import annotations

from peewee import Database

MEMBER_LOCKS = 0x6D656D62  # terminal.hq.database._PG_MEMBER_LOCKS
ASK = (
    'WITH q AS (SELECT CAST($2 AS TEXT) AS card_hash, CAST($3 AS TEXT) AS hold_id, CAST($4 '
    'AS TEXT) AS store, CAST($5 AS TEXT) AS terminal, CAST($6 AS BIGINT) AS at_us, CAST($7 '
    'AS NUMERIC) AS points, CAST($8 AS BIGINT) AS expires_us, CAST($9 AS BIGINT) AS '
    'month_start, CAST($10 AS NUMERIC) AS day_cap, CAST($11 AS NUMERIC) AS max_per_till, '
    'CAST($12 AS NUMERIC) AS max_points_per_till, CAST($13 AS NUMERIC) AS max_per_member, '
    'CAST($14 AS NUMERIC) AS max_per_till_member_per_hour, CAST($15 AS TEXT) AS frozen, '
    'CAST($16 AS TEXT) AS retired), r AS (SELECT m.id, m.card_hash, m.card_last4, m.name, '
    'm.phone_hash, m.phone_last4, m.birthday, m.referrer_id, m.referral_paid, '
    'm.registered_us, m.tier, m.tier_reviewed_us, m.balance, m.debt, c.state AS card_state, '
    'c.reason AS card_reason, e.store AS e_store, e.terminal AS e_terminal, e.card_hash AS '
    'e_card_hash, e.points AS e_points, e.state AS e_state, (SELECT COUNT(*) FROM '
    'member_hold h WHERE h.store = q.store AND h.terminal = q.terminal AND h.card_hash <> '
    "q.card_hash AND h.state = 'pending' AND h.expires_us > q.at_us) AS till_count, (SELECT "
    'COALESCE(SUM(h.points), 0) FROM member_hold h WHERE h.store = q.store AND h.terminal = '
    "q.terminal AND h.card_hash <> q.card_hash AND h.state = 'pending' AND h.expires_us > "
    'q.at_us) AS till_points, (SELECT COUNT(*) FROM member_hold h WHERE h.card_hash = '
    "q.card_hash AND h.state = 'pending' AND h.expires_us > q.at_us AND NOT (h.store = "
    'q.store AND h.terminal = q.terminal)) AS member_count, (SELECT COUNT(*) FROM '
    'member_hold h WHERE h.store = q.store AND h.terminal = q.terminal AND h.card_hash = '
    'q.card_hash AND h.created_us > q.at_us - 3600000000) AS asked, (SELECT '
    'COALESCE(SUM(h.points), 0) FROM member_hold h WHERE h.card_hash = q.card_hash AND '
    "h.state = 'pending' AND h.expires_us > q.at_us) AS pending, (SELECT "
    'COALESCE(SUM(h.points), 0) FROM member_hold h WHERE h.card_hash = q.card_hash AND '
    "h.store = q.store AND h.terminal = q.terminal AND h.state = 'pending' AND h.expires_us "
    '> q.at_us) AS replaced, (SELECT COALESCE(SUM(l.remaining), 0) FROM lot l WHERE '
    'l.member_id = m.id AND l.remaining > 0 AND l.expires_us <= q.at_us AND '
    'l.dated_trusted) AS unswept FROM q LEFT JOIN member m ON m.card_hash = q.card_hash '
    'LEFT JOIN card_state c ON c.card_hash = q.card_hash LEFT JOIN member_hold e ON e.id = '
    'q.hold_id), g AS (SELECT COALESCE((r.card_state IS NULL OR r.card_state NOT IN '
    '(q.frozen, q.retired)) AND r.e_store IS NULL AND r.id IS NOT NULL AND (q.day_cap IS '
    'NULL OR COALESCE(q.points, 0) <= q.day_cap) AND r.till_count < q.max_per_till AND '
    'r.till_points + COALESCE(q.points, 0) <= q.max_points_per_till AND r.member_count < '
    'q.max_per_member AND r.asked < q.max_per_till_member_per_hour AND r.tier_reviewed_us '
    '>= q.month_start AND q.points <= r.balance - r.unswept - r.pending + r.replaced, '
    "FALSE) AS granted FROM q, r), v AS (UPDATE member_hold h SET state = 'voided', "
    'settled_us = q.at_us FROM q, g WHERE g.granted AND h.card_hash = q.card_hash AND '
    "h.store = q.store AND h.terminal = q.terminal AND h.state = 'pending'), i AS (INSERT "
    'INTO member_hold (id, card_hash, points, state, store, terminal, created_us, '
    "expires_us) SELECT q.hold_id, q.card_hash, q.points, 'pending', q.store, q.terminal, "
    'q.at_us, q.expires_us FROM q, g WHERE g.granted RETURNING 1) SELECT r.*, (SELECT '
    'COUNT(*) FROM i) FROM r'
)
COLUMNS = (
    'id text, card_hash text, card_last4 text, name text, phone_hash text, phone_last4 text, '
    'birthday text, referrer_id text, referral_paid boolean, registered_us bigint, tier text, '
    'tier_reviewed_us bigint, balance integer, debt integer, card_state text, card_reason text, '
    'e_store text, e_terminal text, e_card_hash text, e_points integer, e_state text, '
    'till_count bigint, till_points bigint, member_count bigint, asked bigint, pending bigint, '
    'replaced bigint, unswept bigint, granted bigint'
)


def function(ask: str) -> str:
    """``hq_hold_ask`` running ``ask`` (:data:`ASK` here; migration 34 replaces it)."""
    return (
        "CREATE OR REPLACE FUNCTION hq_hold_ask(lock_key integer, text, text, text, text, "
        "bigint, numeric, bigint, bigint, numeric, numeric, numeric, numeric, numeric, text, "
        f"text) RETURNS TABLE ({COLUMNS}) LANGUAGE plpgsql VOLATILE AS $hold$\n"
        "#variable_conflict use_column\n"
        "BEGIN\n"
        "  IF lock_key IS NOT NULL THEN\n"
        f"    PERFORM pg_advisory_xact_lock({MEMBER_LOCKS}, lock_key);\n"
        "  END IF;\n"
        f"  RETURN QUERY {ask};\n"
        "END\n"
        "$hold$"
    )


FUNCTION = function(ASK)


def sqlite(db: Database) -> None:
    """Nothing: SQLite's holds take the full way (one shop, no round trips)."""


def postgresql(db: Database) -> None:
    db.execute_sql(FUNCTION)
