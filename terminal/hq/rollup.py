"""The reports' roll-ups (HQ migration 15), kept current from the ledger HQ appends to.

    posterm-hq rollup --db URL [--rules rules.toml] [--every SECONDS]

One run (:func:`catch_up`) reads what was committed since the last one and folds it into the
roll-up tables, in one transaction, one run at a time:

- what is new: on SQLite (one writer, the sequence in commit order) the rows above the sequence
  number the last run stored; on PostgreSQL the spans of the sequence queued by the triggers on
  ``sale``, ``refund`` and ``ledger_entry`` (see the migration: the collectors' blocks are not in
  commit order), taken in the same snapshot as the rows they name;
- the members of the new sales and of the sales new refunds are for have their ``agg_member_day``
  and ``agg_member`` rows computed again from all their sales (a refund that makes a sale wholly
  refunded takes it out, as the analytics' definitions say); the new entries add their points to
  ``agg_points_day``, and the allocations of new redemptions and restores to ``agg_settle_day``.

Which store wrote a row is found in the database, set-based: the applied event whose span of the
sequence holds the row's number (one probe of ``applied_event.last_seq``'s index per row),
``HQ`` when none does. Days are local days of the rules' zone (days since 1970-01-01); the zone
is stored, and another zone rebuilds every roll-up from the ledger.

The reports (:mod:`terminal.hq.analytics`, :mod:`terminal.hq.points_reports`) run a catch-up
before they read, so they are exact; ``posterm-hq rollup --every 10`` (its own service beside the
collectors, never in their batches) keeps what that catch-up has to read small. On a PostgreSQL
hot standby (read-only) a catch-up does nothing: the roll-ups there are the primary's, as fresh
as its last run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time as clock
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from peewee import Database, PostgresqlDatabase

from terminal.hq.analytics_sql import day_expression
from terminal.hq.entry_stores import HQ
from terminal.loyalty import ledger
from terminal.loyalty.clock import to_micros

log = logging.getLogger(__name__)
_PG_ROLLUP_LOCK = 0x726F6C6C  # "roll": one catch-up at a time
TABLES = ("agg_member_day", "agg_member", "agg_points_day", "agg_settle_day", "agg_sku_day")
# What the roll-ups hold; a database rolled up by another version is rolled up again.
VERSION = "2"
SETTLING = (ledger.REDEEM, ledger.RESTORE)
EPOCH = date(1970, 1, 1)  # day 0 of the roll-ups' local days


def store_of(column: str) -> str:
    """SQL: the store whose applied event's span holds sequence number ``column``, else HQ."""
    return (f"COALESCE((SELECT CASE WHEN a.first_seq <= {column} THEN a.store END "
            f"FROM applied_event a WHERE a.last_seq >= {column} ORDER BY a.last_seq LIMIT 1), "
            f"'{HQ}')")


@dataclass(frozen=True)
class Caught:
    """What one catch-up read: spans of the sequence, members recomputed, entries added."""

    spans: int
    members: int
    entries: int
    rebuilt: bool


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return [(low, high) for low, high in merged]


def catch_up(db: Database, zone: ZoneInfo) -> Caught:
    """Fold what was committed since the last run into the roll-ups (models need not be bound;
    not inside a transaction: the run is its own)."""
    if db.in_transaction():
        raise RuntimeError("rollup.catch_up runs its own transaction, not inside another")
    postgres = isinstance(db, PostgresqlDatabase)
    if postgres and db.execute_sql("SELECT pg_is_in_recovery()").fetchone()[0]:
        return Caught(0, 0, 0, False)  # a standby: the roll-ups come from the primary's runs
    if postgres:  # before the snapshot: the previous run's rows are then seen by this one
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_ROLLUP_LOCK,))
    try:
        with (db.atomic(isolation_level="REPEATABLE READ") if postgres
              else db.atomic("IMMEDIATE")):
            return _run(db, zone, postgres)
    finally:
        if postgres:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_ROLLUP_LOCK,))


def _state(db: Database) -> dict[str, str]:
    return dict(db.execute_sql("SELECT key, value FROM agg_state").fetchall())


def _set_state(db: Database, key: str, value: str) -> None:
    p = db.param
    db.execute_sql("DELETE FROM agg_state WHERE key = " + p, (key,))
    db.execute_sql(f"INSERT INTO agg_state (key, value) VALUES ({p}, {p})", (key, value))


def _run(db: Database, zone: ZoneInfo, postgres: bool) -> Caught:
    state = _state(db)
    rebuild = (state.get("zone"), state.get("version")) != (zone.key, VERSION)
    if rebuild:
        for table in TABLES:
            db.execute_sql(f"DELETE FROM {table}")
        _set_state(db, "zone", zone.key)
        _set_state(db, "version", VERSION)
    if postgres:
        rows = db.execute_sql("DELETE FROM agg_queue RETURNING first_seq, last_seq").fetchall()
        spans = [(0, 2**62)] if rebuild else _merge([(int(a), int(b)) for a, b in rows])
    else:
        top = db.execute_sql("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        top_seq = int(top[0] or 0) if top else 0
        done = 0 if rebuild else int(state.get("seq", "0"))
        spans = [(done + 1, top_seq)] if top_seq > done else []
        _set_state(db, "seq", str(max(top_seq, done)))
    if not spans:
        return Caught(0, 0, 0, rebuild)
    _temporary(db, postgres)
    p = db.param
    for low, high in spans:
        db.execute_sql(f"INSERT INTO agg_span (lo, hi) VALUES ({p}, {p})", (low, high))
    _analyze(db, postgres, "agg_span")
    members = _members(db, zone, postgres)
    entries = _entries(db, zone)
    _drop(db)
    return Caught(len(spans), members, entries, rebuild)


def _temporary(db: Database, postgres: bool) -> None:
    _drop(db)
    extra = " ON COMMIT DROP" if postgres else ""
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_span (lo BIGINT, hi BIGINT){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_dirty (member TEXT PRIMARY KEY){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_touched (id TEXT PRIMARY KEY, member TEXT, "
                   f"wall_us BIGINT){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_days (day INTEGER PRIMARY KEY, lo BIGINT, "
                   f"hi BIGINT){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_whole (id TEXT PRIMARY KEY){extra}")
    for table in ("agg_msales", "agg_dsales"):  # the dirty members' sales, the days' sales
        db.execute_sql(f"CREATE TEMPORARY TABLE {table} (id TEXT PRIMARY KEY, member TEXT, "
                       f"seq BIGINT, wall_us BIGINT, paid BIGINT, day INTEGER){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_sales (member TEXT, store TEXT, day INTEGER, "
                   f"wall_us BIGINT, net BIGINT){extra}")


def _drop(db: Database) -> None:
    for table in ("agg_span", "agg_dirty", "agg_sales", "agg_touched", "agg_days", "agg_whole",
                  "agg_msales", "agg_dsales"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")


def _analyze(db: Database, postgres: bool, table: str) -> None:
    """PostgreSQL: the temporary table's statistics, so a few spans or members are joined
    through the indexes (unanalyzed, the planner guesses thousands of rows and scans)."""
    if postgres:
        db.execute_sql(f"ANALYZE {table}")


def _members(db: Database, zone: ZoneInfo, postgres: bool) -> int:
    """Recompute the roll-up rows of the members whose sales or refunds are new, and of the
    days of those sales by product."""
    sql = db.execute_sql
    sql("""INSERT INTO agg_touched (id, member, wall_us)
        SELECT s.id, s.member_id, s.wall_us FROM sale s
        JOIN agg_span sp ON s.seq BETWEEN sp.lo AND sp.hi WHERE s.member_id IS NOT NULL
        UNION SELECT s.id, s.member_id, s.wall_us FROM refund r
        JOIN agg_span sp ON r.seq BETWEEN sp.lo AND sp.hi
        JOIN sale s ON s.id = r.sale_id WHERE s.member_id IS NOT NULL""")
    sql("INSERT INTO agg_dirty (member) SELECT DISTINCT member FROM agg_touched")
    count = int(sql("SELECT COUNT(*) FROM agg_dirty").fetchone()[0])
    if not count:
        return 0
    _analyze(db, postgres, "agg_touched")
    _analyze(db, postgres, "agg_dirty")
    _products(db, zone, postgres)
    # The dirty members' sales first (their (member, wall_us) index), then what refunds left
    # of them: each statement joins a few thousand rows through indexes.
    sql("""INSERT INTO agg_msales (id, member, seq, wall_us, paid)
        SELECT s.id, s.member_id, s.seq, s.wall_us, s.paid_fen
        FROM agg_dirty d JOIN sale s ON s.member_id = d.member""")
    _analyze(db, postgres, "agg_msales")
    low, high = sql("SELECT MIN(wall_us), MAX(wall_us) FROM agg_msales").fetchone()
    day = day_expression(zone, int(low), int(high), "x.wall_us")
    # A member's counted sales: all but those wholly refunded (every unit brought back), each
    # for its paid fen less what refunds gave back (analytics_sql.counted_sales).
    sql(f"""INSERT INTO agg_sales (member, store, day, wall_us, net)
        SELECT x.member, {store_of("x.seq")}, {day}, x.wall_us, x.paid - COALESCE(b.fen, 0)
        FROM agg_msales x
        LEFT JOIN (SELECT r.sale_id, SUM(rl.fen) AS fen, SUM(rl.qty) AS qty
                   FROM agg_msales y JOIN refund r ON r.sale_id = y.id
                   JOIN refund_line rl ON rl.refund_id = r.id
                   GROUP BY r.sale_id) b ON b.sale_id = x.id
        WHERE b.sale_id IS NULL OR b.qty <= 0
              OR b.qty < COALESCE((SELECT SUM(sl.qty) FROM sale_line sl WHERE sl.sale_id = x.id),
                                  b.qty + 1)""")
    _analyze(db, postgres, "agg_sales")
    for table in ("agg_member_day", "agg_member"):
        sql(f"DELETE FROM {table} WHERE member IN (SELECT member FROM agg_dirty)")
    sql("""INSERT INTO agg_member_day (member, store, day, fen, last_us)
        SELECT member, store, day, SUM(net), MAX(wall_us) FROM agg_sales
        GROUP BY member, store, day""")
    sql("""INSERT INTO agg_member (member, store, first_day, last_day, last_us)
        SELECT member, store, MIN(day), MAX(day), MAX(wall_us) FROM agg_sales
        GROUP BY member, store
        UNION ALL SELECT member, '', MIN(day), MAX(day), MAX(wall_us) FROM agg_sales
        GROUP BY member""")
    return count


def _products(db: Database, zone: ZoneInfo, postgres: bool) -> None:
    """Compute again the product rows of the days of the touched sales (new, or with a new
    refund): every counted member sale of those days, as analytics_sql.top_sold counts it."""
    sql, p = db.execute_sql, db.param
    low, high = sql("SELECT MIN(wall_us), MAX(wall_us) FROM agg_touched").fetchone()
    day = day_expression(zone, int(low), int(high), "wall_us")
    for (number,) in sql(f"SELECT DISTINCT {day} FROM agg_touched").fetchall():
        first = EPOCH + timedelta(days=int(number))
        lo = to_micros(datetime.combine(first, time(), zone))
        hi = to_micros(datetime.combine(first + timedelta(days=1), time(), zone))
        sql(f"INSERT INTO agg_days (day, lo, hi) VALUES ({p}, {p}, {p})", (int(number), lo, hi))
    _analyze(db, postgres, "agg_days")
    sql("""INSERT INTO agg_dsales (id, seq, day)
        SELECT s.id, s.seq, d.day FROM agg_days d
        JOIN sale s ON s.wall_us >= d.lo AND s.wall_us < d.hi WHERE s.member_id IS NOT NULL""")
    _analyze(db, postgres, "agg_dsales")
    sql("""INSERT INTO agg_whole (id)
        SELECT r.sale_id FROM agg_dsales x JOIN refund r ON r.sale_id = x.id
        JOIN refund_line rl ON rl.refund_id = r.id
        GROUP BY r.sale_id HAVING SUM(rl.qty) > 0
        AND SUM(rl.qty) >= (SELECT SUM(sl.qty) FROM sale_line sl WHERE sl.sale_id = r.sale_id)""")
    _analyze(db, postgres, "agg_whole")
    sql("DELETE FROM agg_sku_day WHERE day IN (SELECT day FROM agg_days)")
    sql(f"""INSERT INTO agg_sku_day (day, store, sku, category, name, qty, fen)
        SELECT x.day, {store_of("x.seq")}, sl.sku, sl.category, MIN(sl.name),
               SUM(sl.qty - COALESCE(b.qty, 0)), SUM(sl.paid_fen - COALESCE(b.fen, 0))
        FROM agg_dsales x JOIN sale_line sl ON sl.sale_id = x.id
        LEFT JOIN (SELECT r.sale_id, rl.line_no, SUM(rl.qty) AS qty, SUM(rl.fen) AS fen
                   FROM agg_dsales y JOIN refund r ON r.sale_id = y.id
                   JOIN refund_line rl ON rl.refund_id = r.id
                   GROUP BY r.sale_id, rl.line_no) b
               ON b.sale_id = sl.sale_id AND b.line_no = sl.line_no
        WHERE NOT EXISTS (SELECT 1 FROM agg_whole w WHERE w.id = x.id)
        GROUP BY 1, 2, 3, 4""")


def _entries(db: Database, zone: ZoneInfo) -> int:
    """Add the new entries' points and the new redemptions' allocations."""
    sql, p = db.execute_sql, db.param
    low, high = sql("SELECT MIN(e.wall_us), MAX(e.wall_us) FROM ledger_entry e "
                    "JOIN agg_span sp ON e.seq BETWEEN sp.lo AND sp.hi").fetchone()
    if low is None:
        return 0
    day = day_expression(zone, int(low), int(high), "e.wall_us")
    cursor = sql(f"""INSERT INTO agg_points_day (day, store, kind, points)
        SELECT {day}, {store_of("e.seq")}, e.kind, SUM(e.points)
        FROM ledger_entry e JOIN agg_span sp ON e.seq BETWEEN sp.lo AND sp.hi
        WHERE e.seq IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (day, store, kind) DO UPDATE SET points = agg_points_day.points
                                                               + excluded.points""")
    added = cursor.rowcount
    sql(f"""INSERT INTO agg_settle_day (day, issued, redeemed, points)
        SELECT {day}, {store_of("i.seq")}, {store_of("e.seq")}, SUM(a.points)
        FROM ledger_entry e JOIN agg_span sp ON e.seq BETWEEN sp.lo AND sp.hi
        JOIN allocation a ON a.entry_id = e.id JOIN ledger_entry i ON i.id = a.lot_id
        WHERE e.kind IN ({p}, {p}) GROUP BY 1, 2, 3
        ON CONFLICT (day, issued, redeemed) DO UPDATE SET points = agg_settle_day.points
                                                                    + excluded.points""",
        SETTLING)
    return max(added, 0)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, default=None,
                        help="the chain's rules TOML: its zone (default: the example rules)")
    parser.add_argument("--every", type=float, default=0.0,
                        help="run again after this many seconds, until stopped (0: once)")


def run(args: argparse.Namespace) -> int:
    from terminal.daemon.sim.demo import demo_rules
    from terminal.hq.bundles import read_toml
    from terminal.hq.database import open_hq_database
    from terminal.loyalty.rules import Rules

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        db = open_hq_database(args.db, migrate=False)
    except (ValueError, OSError) as exc:
        print(f"posterm-hq rollup: {exc}", file=sys.stderr)
        return 2
    try:
        while True:
            started = clock.monotonic()
            caught = catch_up(db, rules.zone)
            if caught.spans:
                log.info("rolled up %d spans: %d members, %d entry groups%s in %.2f s",
                         caught.spans, caught.members, caught.entries,
                         " (rebuilt)" if caught.rebuilt else "", clock.monotonic() - started)
            if args.every <= 0:
                return 0
            clock.sleep(args.every)
    except KeyboardInterrupt:
        return 0
    finally:
        db.close()
