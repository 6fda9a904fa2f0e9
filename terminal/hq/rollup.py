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
  refunded takes it out, as the analytics' definitions say): a row per store and local day and
  one for the chain (store ``''``), each naming the member's previous day there (``prev_us``),
  and per store and the chain the first and last day and, on the chain's row, the spend in the
  tier window kept (``window_fen``); the new entries add their points to ``agg_points_day``, and
  the allocations of new redemptions and restores to ``agg_settle_day``; new member sales add
  themselves to ``agg_sale_day`` (per day and store, refunds not taken off: migration 21);
- the tier window kept ends with the zone's today: when the day changes, every member's
  ``window_fen`` moves by the chain's rows of the days that left it and came in; the windows
  ending at the last month starts (``MONTH_STARTS``) are kept per member in
  ``agg_member_window`` (migration 20), one more made from today's when a month begins;
- a member whose tier changed (queued in ``agg_tier_changed`` by a trigger on ``member``) has
  it copied to its chain row of ``agg_member`` and its ``agg_member_window`` rows;
- ``agg_lot_day`` (points left in lots by the local day of their last instant and issuing
  store) adds new lots' points left, the new entries' allocations from older lots, and lots
  dated now on a trusted clock (queued by a trigger on ``lot``, migration 19).

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
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Database, PostgresqlDatabase

from terminal.hq.analytics_sql import day_expression, window_delta
from terminal.hq.entry_stores import HQ
from terminal.loyalty import ledger
from terminal.loyalty.calendar import add_months
from terminal.loyalty.clock import to_micros

log = logging.getLogger(__name__)
_PG_ROLLUP_LOCK = 0x726F6C6C  # "roll": one catch-up at a time
TABLES = ("agg_member_day", "agg_member", "agg_points_day", "agg_settle_day", "agg_sku_day",
          "agg_lot_day", "agg_member_window", "agg_sale_day", "agg_member_count",
          "agg_member_month", "agg_member_span")
# What the roll-ups hold; a database rolled up by another version is rolled up again.
VERSION = "7"
WINDOW_MONTHS = 12  # the tier window kept in agg_member.window_fen unless told another
MONTH_STARTS = 3  # tier windows kept ending at today's month's start and the two before
MOVE_DAYS = 62  # a kept window moved further than this is summed again from the days
SPAN_END = 2**31 - 1  # agg_member_span: the end of a run with no end (a day number)
REBUILD_WORK_MEM = "256MB"  # PostgreSQL: a rebuild's sorts (the server's default is 4MB)
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


def catch_up(db: Database, zone: ZoneInfo, window_months: int = WINDOW_MONTHS,
             today: date | None = None) -> Caught:
    """Fold what was committed since the last run into the roll-ups (models need not be bound;
    not inside a transaction: the run is its own). ``window_months``: the rules' tier window,
    kept in ``agg_member.window_fen`` as it ends with ``today`` (the zone's, by the clock)."""
    if db.in_transaction():
        raise RuntimeError("rollup.catch_up runs its own transaction, not inside another")
    postgres = isinstance(db, PostgresqlDatabase)
    if postgres and db.execute_sql("SELECT pg_is_in_recovery()").fetchone()[0]:
        return Caught(0, 0, 0, False)  # a standby: the roll-ups come from the primary's runs
    window = kept_window(today or datetime.now(zone).date(), window_months)
    if postgres:  # before the snapshot: the previous run's rows are then seen by this one
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_ROLLUP_LOCK,))
    try:
        with (db.atomic(isolation_level="REPEATABLE READ") if postgres
              else db.atomic("IMMEDIATE")):
            return _run(db, zone, postgres, window)
    finally:
        if postgres:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_ROLLUP_LOCK,))


@dataclass(frozen=True)
class Window:
    """The tier window ``agg_member.window_fen`` holds: local days [since, end) (``end`` the
    day after the last), ``months`` long."""

    since: int
    end: int
    months: int

    def text(self) -> str:
        return f"{self.since}:{self.end}:{self.months}"


def kept_window(last: date, months: int) -> Window:
    """The window of ``months`` ending with the day ``last`` (the one a report whose ``to`` is
    the next day reads: the console's default)."""
    return _ending(last + timedelta(days=1), months)


def _ending(end: date, months: int) -> Window:
    return Window((_months_back(end, months) - EPOCH).days, (end - EPOCH).days, months)


def _months_back(day: date, months: int) -> date:
    return add_months(datetime.combine(day, time()), -months).date()


def month_windows(today: Window) -> list[Window]:
    """The windows kept in ``agg_member_window`` beside ``today``'s (the kept window): those of
    its length ending at the start of its last day's month and of the ``MONTH_STARTS - 1``
    months before."""
    first = (EPOCH + timedelta(days=today.end - 1)).replace(day=1)
    return [_ending(_months_back(first, back), today.months) for back in range(MONTH_STARTS)]


def stored_window(db: Database) -> Window | None:
    """The window the roll-ups hold (None before the first run)."""
    row = db.execute_sql("SELECT value FROM agg_state WHERE key = 'window'").fetchone()
    if not row:
        return None
    since, end, months = (int(part) for part in row[0].split(":"))
    return Window(since, end, months)


def spans_kept(db: Database) -> int | None:
    """The tier window's months ``agg_member_span`` holds the spend in (None before the first
    catch-up of HQ migration 28's tables)."""
    row = db.execute_sql("SELECT value FROM agg_state WHERE key = 'spans'").fetchone()
    return int(row[0]) if row else None


def _state(db: Database) -> dict[str, str]:
    return dict(db.execute_sql("SELECT key, value FROM agg_state").fetchall())


def _set_state(db: Database, key: str, value: str) -> None:
    p = db.param
    db.execute_sql("DELETE FROM agg_state WHERE key = " + p, (key,))
    db.execute_sql(f"INSERT INTO agg_state (key, value) VALUES ({p}, {p})", (key, value))


def _run(db: Database, zone: ZoneInfo, postgres: bool, window: Window) -> Caught:
    state = _state(db)
    rebuild = (state.get("zone"), state.get("version")) != (zone.key, VERSION)
    if postgres:  # a few thousand rows a statement: compiling them (JIT) took 0.8 s each
        db.execute_sql("SELECT set_config('jit', 'off', true)")
    if rebuild:
        if postgres:  # one session's sorts of every sale, once: in memory rather than on disk
            db.execute_sql("SELECT set_config('work_mem', %s, true)", (REBUILD_WORK_MEM,))
        for table in TABLES:
            db.execute_sql(f"DELETE FROM {table}")
        db.execute_sql("DELETE FROM agg_lot_dated")
        _set_state(db, "zone", zone.key)
        _set_state(db, "version", VERSION)
        db.execute_sql("DELETE FROM agg_tier_changed")  # every tier is read again
    else:  # before the members are computed again: theirs are then computed for the new one
        old = stored_window(db)
        _move_window(db, old, window)
        _move_months(db, old, window)
    _set_state(db, "window", window.text())
    if postgres:
        rows = db.execute_sql("DELETE FROM agg_queue RETURNING first_seq, last_seq").fetchall()
        spans = [(0, 2**62)] if rebuild else _merge([(int(a), int(b)) for a, b in rows])
    else:
        top = db.execute_sql("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        top_seq = int(top[0] or 0) if top else 0
        done = 0 if rebuild else int(state.get("seq", "0"))
        spans = [(done + 1, top_seq)] if top_seq > done else []
        _set_state(db, "seq", str(max(top_seq, done)))
    dated = db.execute_sql("DELETE FROM agg_lot_dated RETURNING lot_id, moved").fetchall()
    _tiers(db)
    if rebuild or state.get("spans") != str(window.months):  # every member's runs again
        db.execute_sql("DELETE FROM agg_member_span")
        _set_state(db, "spans", str(window.months))
        if not rebuild:  # a rebuild computes every member's below, as a dirty one
            _spans(db, postgres, window.months, dirty=False)
            _analyze(db, postgres, "agg_member_span")
    if not spans and not dated:
        return Caught(0, 0, 0, rebuild)
    _temporary(db, postgres)
    p = db.param
    for low, high in spans:
        db.execute_sql(f"INSERT INTO agg_span (lo, hi) VALUES ({p}, {p})", (low, high))
    for kept in month_windows(window):
        db.execute_sql(f"INSERT INTO agg_months (since, end_day) VALUES ({p}, {p})",
                       (kept.since, kept.end))
    _analyze(db, postgres, "agg_span")
    _analyze(db, postgres, "agg_months")
    bounds = (min(low for low, _ in spans), max(high for _, high in spans)) if spans else (0, -1)
    members = _members(db, zone, postgres, window, rebuild, bounds)
    _sales(db, zone, bounds)
    entries = _entries(db, zone, bounds)
    _lots(db, zone, postgres, bounds, rebuild or any(bool(moved) for _, moved in dated),
          sorted({str(lot) for lot, _ in dated}))
    _drop(db)
    return Caught(len(spans), members, entries, rebuild)


def _near(old: Window | None, new: Window) -> bool:
    """Whether ``new`` is moved from ``old`` by the days between (else summed again)."""
    return (old is not None and old.months == new.months
            and abs(new.end - old.end) <= MOVE_DAYS)


def _move_window(db: Database, old: Window | None, new: Window) -> None:
    """Move every member's ``window_fen`` from the ``old`` window to ``new``: by the days that
    left it and the days that came in (the chain's rows of those days, a day's members each),
    or computed again from every row when the months changed or it moved far."""
    if old == new:
        return
    p = db.param
    if old is None or not _near(old, new):
        db.execute_sql(f"""UPDATE agg_member SET window_fen = COALESCE(
            (SELECT SUM(md.fen) FROM agg_member_day md WHERE md.member = agg_member.member
             AND md.store = '' AND md.day >= {p} AND md.day < {p}), 0)
            WHERE store = ''""", (new.since, new.end))
        return
    delta, params = window_delta(db, (old.since, old.end), (new.since, new.end))
    db.execute_sql(f"""UPDATE agg_member SET window_fen = window_fen + d.fen FROM ({delta}) d
        WHERE agg_member.store = '' AND agg_member.member = d.member""", params)


def _move_months(db: Database, old: Window | None, new: Window) -> None:
    """Keep ``agg_member_window`` at the month starts of ``new``'s (today's) window: drop those
    no longer kept, and make each new one from the kept window (``agg_member.window_fen``,
    moved to ``new`` before) moved by the days between, or summed from the days when far."""
    p = db.param
    had = month_windows(old) if old is not None and old.months == new.months else []
    if not had:
        db.execute_sql("DELETE FROM agg_member_window")
    wanted = month_windows(new)
    for gone in set(had) - set(wanted):
        db.execute_sql(f"DELETE FROM agg_member_window WHERE end_day = {p}", (gone.end,))
    for kept in sorted(set(wanted) - set(had), key=lambda w: w.end):
        if _near(new, kept):
            delta, params = window_delta(db, (new.since, new.end), (kept.since, kept.end))
            db.execute_sql(f"""INSERT INTO agg_member_window (member, end_day, tier, fen)
                SELECT a.member, {p}, a.tier, a.window_fen + COALESCE(d.fen, 0)
                FROM agg_member a LEFT JOIN ({delta}) d ON d.member = a.member
                WHERE a.store = '' AND a.window_fen + COALESCE(d.fen, 0) <> 0""",
                           [kept.end, *params])
        else:
            db.execute_sql(f"""INSERT INTO agg_member_window (member, end_day, tier, fen)
                SELECT md.member, {p}, a.tier, SUM(md.fen) FROM agg_member_day md
                JOIN agg_member a ON a.store = '' AND a.member = md.member
                WHERE md.store = '' AND md.day >= {p} AND md.day < {p}
                GROUP BY md.member, a.tier HAVING SUM(md.fen) <> 0""",
                           (kept.end, kept.since, kept.end))


def _tiers(db: Database) -> None:
    """Copy the tiers of the members queued in ``agg_tier_changed`` (their tier changed since)
    to their roll-up rows."""
    if db.execute_sql("SELECT 1 FROM agg_tier_changed LIMIT 1").fetchone():
        now = "(SELECT m.tier FROM member m WHERE m.id = {0}.member)"
        changed = "member IN (SELECT member FROM agg_tier_changed)"
        db.execute_sql(f"UPDATE agg_member SET tier = {now.format('agg_member')} "
                       f"WHERE store = '' AND {changed}")
        for table in ("agg_member_window", "agg_member_span"):
            db.execute_sql(f"UPDATE {table} SET tier = {now.format(table)} WHERE {changed}")
        db.execute_sql("DELETE FROM agg_tier_changed")


def _temporary(db: Database, postgres: bool) -> None:
    _drop(db)
    extra = " ON COMMIT DROP" if postgres else ""
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_span (lo BIGINT, hi BIGINT){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_months (since INTEGER, end_day INTEGER){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_calendar (since INTEGER, end_day INTEGER){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_dirty (member TEXT PRIMARY KEY){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_touched (id TEXT PRIMARY KEY, member TEXT, "
                   f"wall_us BIGINT){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_days (day INTEGER PRIMARY KEY, lo BIGINT, "
                   f"hi BIGINT){extra}")
    db.execute_sql(f"CREATE TEMPORARY TABLE agg_whole (id TEXT PRIMARY KEY){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_added (id TEXT PRIMARY KEY, seq BIGINT, "
                   f"day INTEGER){extra}")
    for table in ("agg_msales", "agg_dsales"):  # the dirty members' sales, the days' sales
        db.execute_sql(f"CREATE TEMPORARY TABLE {table} (id TEXT PRIMARY KEY, member TEXT, "
                       f"seq BIGINT, wall_us BIGINT, paid BIGINT, day INTEGER){extra}")
    db.execute_sql("CREATE TEMPORARY TABLE agg_sales (member TEXT, store TEXT, day INTEGER, "
                   f"wall_us BIGINT, net BIGINT){extra}")
    for table in ("agg_lot_new", "agg_lot_now"):  # lots new in the spans, lots dated now
        db.execute_sql(f"CREATE TEMPORARY TABLE {table} (id TEXT PRIMARY KEY){extra}")


def _drop(db: Database) -> None:
    for table in ("agg_span", "agg_months", "agg_calendar", "agg_dirty", "agg_sales",
                  "agg_touched", "agg_days", "agg_whole", "agg_added", "agg_msales",
                  "agg_dsales",
                  "agg_lot_new", "agg_lot_now"):
        db.execute_sql(f"DROP TABLE IF EXISTS {table}")


def _span_join(column: str, bounds: tuple[int, int]) -> str:
    """SQL joining ``agg_span`` (aliased ``sp``) on sequence number ``column``, with the spans'
    lowest and highest numbers as constants too: PostgreSQL then estimates the rows from the
    column's statistics (a thousand, not a ninth of the table as for the join alone, which
    made it hash a million lots and compile the statements with JIT)."""
    low, high = (int(bound) for bound in bounds)
    return (f"agg_span sp ON {column} BETWEEN sp.lo AND sp.hi "
            f"AND {column} BETWEEN {low} AND {high}")


def _analyze(db: Database, postgres: bool, table: str) -> None:
    """PostgreSQL: the temporary table's statistics, so a few spans or members are joined
    through the indexes (unanalyzed, the planner guesses thousands of rows and scans)."""
    if postgres:
        db.execute_sql(f"ANALYZE {table}")


def _members(db: Database, zone: ZoneInfo, postgres: bool, window: Window, again: bool,
             bounds: tuple[int, int]) -> int:
    """Recompute the roll-up rows of the members whose sales or refunds are new, and of the
    days of those sales by product."""
    sql = db.execute_sql
    sql(f"""INSERT INTO agg_touched (id, member, wall_us)
        SELECT s.id, s.member_id, s.wall_us FROM sale s
        JOIN {_span_join('s.seq', bounds)} WHERE s.member_id IS NOT NULL
        UNION SELECT s.id, s.member_id, s.wall_us FROM refund r
        JOIN {_span_join('r.seq', bounds)}
        JOIN sale s ON s.id = r.sale_id WHERE s.member_id IS NOT NULL""")
    sql("INSERT INTO agg_dirty (member) SELECT DISTINCT member FROM agg_touched")
    count = int(sql("SELECT COUNT(*) FROM agg_dirty").fetchone()[0])
    if not count:
        return 0
    _analyze(db, postgres, "agg_touched")
    _analyze(db, postgres, "agg_dirty")
    _products(db, zone, postgres, again, bounds)
    # The dirty members' sales first (their (member, wall_us) index), then what refunds left
    # of them: each statement joins a few thousand rows through indexes.
    sql("""INSERT INTO agg_msales (id, member, seq, wall_us, paid)
        SELECT s.id, s.member_id, s.seq, s.wall_us, s.paid_fen
        FROM agg_dirty d JOIN sale s ON s.member_id = d.member""")
    _analyze(db, postgres, "agg_msales")
    low, high = sql("SELECT MIN(wall_us), MAX(wall_us) FROM agg_msales").fetchone()
    day, day_params = day_expression(zone, int(low), int(high), "x.wall_us", db.param)
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
                                  b.qty + 1)""", day_params)
    _analyze(db, postgres, "agg_sales")
    _count_members(db, -1)  # the dirty members' days counted before, taken off
    for table in ("agg_member_day", "agg_member", "agg_member_window", "agg_member_month",
                  "agg_member_span"):
        sql(f"DELETE FROM {table} WHERE member IN (SELECT member FROM agg_dirty)")
    # Each store's days and the chain's (store ''), each row with the time of the member's
    # last counted sale on an earlier day there.
    sql("""INSERT INTO agg_member_day (member, store, day, fen, last_us, prev_us)
        SELECT member, store, day, fen, last_us,
               LAG(last_us) OVER (PARTITION BY member, store ORDER BY day)
        FROM (SELECT member, store, day, SUM(net) AS fen, MAX(wall_us) AS last_us
              FROM agg_sales GROUP BY member, store, day
              UNION ALL SELECT member, '', day, SUM(net), MAX(wall_us) FROM agg_sales
              GROUP BY member, day) x""")
    # The chain's row carries the spend in the kept window and the member's tier.
    p = db.param
    sql(f"""INSERT INTO agg_member (member, store, first_day, last_day, last_us, window_fen,
                                    tier)
        SELECT member, store, MIN(day), MAX(day), MAX(wall_us), 0, NULL FROM agg_sales
        GROUP BY member, store
        UNION ALL SELECT s.member, '', MIN(s.day), MAX(s.day), MAX(s.wall_us),
               SUM(CASE WHEN s.day >= {p} AND s.day < {p} THEN s.net ELSE 0 END),
               COALESCE(m.tier, '')
        FROM agg_sales s LEFT JOIN member m ON m.id = s.member GROUP BY s.member, m.tier""",
        (window.since, window.end))
    _count_members(db, 1)
    _spans(db, postgres, window.months, dirty=True)
    _member_months(db, postgres)
    # And in each window kept at a month start, its spend there (when not 0) and its tier.
    sql("""INSERT INTO agg_member_window (member, end_day, tier, fen)
        SELECT s.member, w.end_day, a.tier, SUM(s.net) FROM agg_sales s
        JOIN agg_months w ON s.day >= w.since AND s.day < w.end_day
        JOIN agg_member a ON a.store = '' AND a.member = s.member
        GROUP BY s.member, w.end_day, a.tier HAVING SUM(s.net) <> 0""")
    return count


def leaves(first: int, last: int, months: int) -> list[tuple[int, int]]:
    """(day, end) for each local day from ``first`` to ``last``: ``end`` is the first window
    end (the day after the window's last) whose window of ``months`` no longer holds the day.
    A day is in the windows ending from the day after it up to that end; the window's start
    (``months`` back from its end, the rules' calendar arithmetic) never moves back, so the
    ends are found in one pass."""
    found = []
    end = first + 1
    for day in range(first, last + 1):
        end = max(end, day + 1)
        while (_months_back(EPOCH + timedelta(days=end), months) - EPOCH).days <= day:
            end += 1
        found.append((day, end))
    return found


def _spans(db: Database, postgres: bool, months: int, dirty: bool) -> None:
    """Write the ``agg_member_span`` rows of the dirty members (or of every member): from the
    chain's ``agg_member_day`` rows, each day's spend coming into the window ending the day
    after it and leaving it at :func:`leaves`' end, summed in order of the window's end; a run
    of ends whose spend is above 0 is a row, with the member's tier (its chain row of
    ``agg_member``)."""
    sql, p = db.execute_sql, db.param
    which = " AND md.member IN (SELECT member FROM agg_dirty)" if dirty else ""
    low, high = sql(f"SELECT MIN(md.day), MAX(md.day) FROM agg_member_day md "
                    f"WHERE md.store = ''{which}").fetchone()
    if low is None:
        return
    sql("DROP TABLE IF EXISTS agg_leave")
    sql("CREATE TEMPORARY TABLE agg_leave (day INTEGER PRIMARY KEY, end_day INTEGER)"
        + (" ON COMMIT DROP" if postgres else ""))
    found = leaves(int(low), int(high), months)
    for start in range(0, len(found), 500):
        chunk = found[start:start + 500]
        values = ", ".join([f"({p}, {p})"] * len(chunk))
        sql(f"INSERT INTO agg_leave (day, end_day) VALUES {values}",
            [value for row in chunk for value in row])
    _analyze(db, postgres, "agg_leave")
    sql(f"""INSERT INTO agg_member_span (member, from_end, to_end, fen, tier)
        SELECT c.member, c.from_end, COALESCE(c.to_end, {SPAN_END}), c.fen, a.tier
        FROM (SELECT g.member, g.at AS from_end,
                     LEAD(g.at) OVER (PARTITION BY g.member ORDER BY g.at) AS to_end,
                     CAST(SUM(g.fen) OVER (PARTITION BY g.member ORDER BY g.at ROWS
                                           BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                          AS BIGINT) AS fen
              FROM (SELECT x.member, x.at, CAST(SUM(x.fen) AS BIGINT) AS fen FROM (
                      SELECT md.member, md.day + 1 AS at, md.fen FROM agg_member_day md
                      WHERE md.store = ''{which}
                      UNION ALL SELECT md.member, l.end_day, -md.fen FROM agg_member_day md
                      JOIN agg_leave l ON l.day = md.day WHERE md.store = ''{which}) x
                    GROUP BY x.member, x.at) g) c
        JOIN agg_member a ON a.store = '' AND a.member = c.member
        WHERE c.fen > 0""")
    sql("DROP TABLE IF EXISTS agg_leave")


def _member_months(db: Database, postgres: bool) -> None:
    """The dirty members' calendar months at each store and in the chain: days with a counted
    sale, the last of them, the spend (``agg_member_month``)."""
    sql, p = db.execute_sql, db.param
    low, high = sql("SELECT MIN(day), MAX(day) FROM agg_sales").fetchone()
    if low is None:
        return
    month = (EPOCH + timedelta(days=int(low))).replace(day=1)
    while (month - EPOCH).days <= int(high):
        following = (month + timedelta(days=32)).replace(day=1)
        sql(f"INSERT INTO agg_calendar (since, end_day) VALUES ({p}, {p})",
            ((month - EPOCH).days, (following - EPOCH).days))
        month = following
    _analyze(db, postgres, "agg_calendar")
    sql("""INSERT INTO agg_member_month (member, store, month, days, last_day, fen)
        SELECT s.member, s.store, c.since, COUNT(DISTINCT s.day), MAX(s.day), SUM(s.net)
        FROM agg_sales s JOIN agg_calendar c ON s.day >= c.since AND s.day < c.end_day
        GROUP BY s.member, s.store, c.since
        UNION ALL SELECT s.member, '', c.since, COUNT(DISTINCT s.day), MAX(s.day), SUM(s.net)
        FROM agg_sales s JOIN agg_calendar c ON s.day >= c.since AND s.day < c.end_day
        GROUP BY s.member, c.since""")


def _count_members(db: Database, sign: int) -> None:
    """Add ``sign`` times the dirty members' first and last days (per store and the chain's)
    to ``agg_member_count``; days left with no member are dropped."""
    p = db.param
    db.execute_sql(f"""INSERT INTO agg_member_count (store, day, firsts, lasts)
        SELECT store, day, SUM(f) * {p}, SUM(l) * {p} FROM (
            SELECT a.store, a.first_day AS day, 1 AS f, 0 AS l FROM agg_member a
            WHERE a.member IN (SELECT member FROM agg_dirty)
            UNION ALL SELECT a.store, a.last_day, 0, 1 FROM agg_member a
            WHERE a.member IN (SELECT member FROM agg_dirty)) x
        WHERE 1 = 1 GROUP BY store, day
        ON CONFLICT (store, day) DO UPDATE SET firsts = agg_member_count.firsts + excluded.firsts,
                                               lasts = agg_member_count.lasts + excluded.lasts""",
                   (sign, sign))
    if sign < 0:
        db.execute_sql("DELETE FROM agg_member_count WHERE firsts = 0 AND lasts = 0")


def _products(db: Database, zone: ZoneInfo, postgres: bool, again: bool,
              bounds: tuple[int, int]) -> None:
    """Keep the product rows of the touched sales' days (new sales, or sales with a new
    refund): a new sale with no refund adds its lines to its day's rows; a day with any other
    change (a new refund, a new sale already refunded; every day when ``again``) has its rows
    computed again from every counted member sale of it, as analytics_sql.top_sold counts
    them. Adding alone, a busy day is not read again at each catch-up (a catch-up after a
    minute of 1,000 sales read the whole day's sales so far, and grew with it)."""
    sql, p = db.execute_sql, db.param
    low, high = sql("SELECT MIN(wall_us), MAX(wall_us) FROM agg_touched").fetchone()
    day, day_params = day_expression(zone, int(low), int(high), "t.wall_us", p)
    if not again:
        sql(f"""INSERT INTO agg_added (id, seq, day)
            SELECT t.id, s.seq, {day} FROM agg_touched t JOIN sale s ON s.id = t.id
            JOIN {_span_join('s.seq', bounds)}
            WHERE NOT EXISTS (SELECT 1 FROM refund r WHERE r.sale_id = t.id)""", day_params)
    for (number,) in sql(f"""SELECT DISTINCT {day} FROM agg_touched t
            WHERE NOT EXISTS (SELECT 1 FROM agg_added n WHERE n.id = t.id)""",
                         day_params).fetchall():
        first = EPOCH + timedelta(days=int(number))
        lo = to_micros(datetime.combine(first, time(), zone))
        hi = to_micros(datetime.combine(first + timedelta(days=1), time(), zone))
        sql(f"INSERT INTO agg_days (day, lo, hi) VALUES ({p}, {p}, {p})", (int(number), lo, hi))
    # A new sale of a day computed again is counted there.
    sql("DELETE FROM agg_added WHERE day IN (SELECT day FROM agg_days)")
    _analyze(db, postgres, "agg_added")
    least = "LEAST" if postgres else "MIN"  # the rows' name: the least of the day's
    sql(f"""INSERT INTO agg_sku_day (day, store, sku, category, name, qty, fen)
        SELECT n.day, {store_of("n.seq")}, sl.sku, sl.category, MIN(sl.name), SUM(sl.qty),
               SUM(sl.paid_fen)
        FROM agg_added n JOIN sale_line sl ON sl.sale_id = n.id
        WHERE 1 = 1 GROUP BY 1, 2, 3, 4
        ON CONFLICT (day, store, sku, category) DO UPDATE SET
            name = {least}(agg_sku_day.name, excluded.name), qty = agg_sku_day.qty + excluded.qty,
            fen = agg_sku_day.fen + excluded.fen""")
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


def _sales(db: Database, zone: ZoneInfo, bounds: tuple[int, int]) -> None:
    """Add the new member sales to their day's and store's count and paid fen."""
    sql, p = db.execute_sql, db.param
    new = (f"FROM sale s JOIN {_span_join('s.seq', bounds)} "
           "WHERE s.member_id IS NOT NULL")
    low, high = sql(f"SELECT MIN(s.wall_us), MAX(s.wall_us) {new}").fetchone()
    if low is None:
        return
    day, day_params = day_expression(zone, int(low), int(high), "s.wall_us", p)
    sql(f"""INSERT INTO agg_sale_day (day, store, sales, fen)
        SELECT {day}, {store_of("s.seq")}, COUNT(*), SUM(s.paid_fen) {new} GROUP BY 1, 2
        ON CONFLICT (day, store) DO UPDATE SET sales = agg_sale_day.sales + excluded.sales,
                                               fen = agg_sale_day.fen + excluded.fen""",
        day_params)


def _entries(db: Database, zone: ZoneInfo, bounds: tuple[int, int]) -> int:
    """Add the new entries' points and the new redemptions' allocations."""
    sql, p = db.execute_sql, db.param
    low, high = sql("SELECT MIN(e.wall_us), MAX(e.wall_us) FROM ledger_entry e "
                    f"JOIN {_span_join('e.seq', bounds)}").fetchone()
    if low is None:
        return 0
    day, day_params = day_expression(zone, int(low), int(high), "e.wall_us", p)
    cursor = sql(f"""INSERT INTO agg_points_day (day, store, kind, points)
        SELECT {day}, {store_of("e.seq")}, e.kind, SUM(e.points)
        FROM ledger_entry e JOIN {_span_join('e.seq', bounds)}
        WHERE e.seq IS NOT NULL GROUP BY 1, 2, 3
        ON CONFLICT (day, store, kind) DO UPDATE SET points = agg_points_day.points
                                                               + excluded.points""",
                 day_params)
    added = cursor.rowcount
    sql(f"""INSERT INTO agg_settle_day (day, issued, redeemed, points)
        SELECT {day}, {store_of("i.seq")}, {store_of("e.seq")}, SUM(a.points)
        FROM ledger_entry e JOIN {_span_join('e.seq', bounds)}
        JOIN allocation a ON a.entry_id = e.id JOIN ledger_entry i ON i.id = a.lot_id
        WHERE e.kind IN ({p}, {p}) GROUP BY 1, 2, 3
        ON CONFLICT (day, issued, redeemed) DO UPDATE SET points = agg_settle_day.points
                                                                    + excluded.points""",
        [*day_params, *SETTLING])
    return max(added, 0)


def _add_lots(db: Database, zone: ZoneInfo, select: str, params: tuple[Any, ...] = ()) -> None:
    """Add to ``agg_lot_day`` the (expires µs, store, points) rows ``select`` gives, each on
    the local day of its lot's last instant (an expiry at midnight is the day before's)."""
    sql = db.execute_sql
    low, high = sql(f"SELECT MIN(x.expires_us), MAX(x.expires_us) FROM ({select}) x",
                    params).fetchone()
    if low is None:
        return
    day, day_params = day_expression(zone, int(low) - 1, int(high), "(x.expires_us - 1)",
                                     db.param)
    sql(f"""INSERT INTO agg_lot_day (day, store, points)
        SELECT {day}, x.store, SUM(x.points) FROM ({select}) x GROUP BY 1, 2
        ON CONFLICT (day, store) DO UPDATE SET points = agg_lot_day.points + excluded.points""",
        [*day_params, *params])


def _lots(db: Database, zone: ZoneInfo, postgres: bool, bounds: tuple[int, int], again: bool,
          dated: list[str]) -> None:
    """Keep ``agg_lot_day``, the points left in lots by expiry day and issuing store (lots dated
    on a trusted clock, with an expiry): a new lot adds what it has left; a new entry's
    allocations move the points of older lots; a lot dated now (it was not counted while
    undated) adds what it has left. ``again``: computed again from every lot (a rebuild, or a
    dated lot's expiry moved)."""
    sql, p = db.execute_sql, db.param
    dated_lot = "l.dated_trusted AND l.expires_us IS NOT NULL"
    if again:
        sql("DELETE FROM agg_lot_day")
        _add_lots(db, zone, f"""SELECT l.expires_us, {store_of("e.seq")} AS store,
            l.remaining AS points FROM lot l JOIN ledger_entry e ON e.id = l.id
            WHERE {dated_lot} AND l.remaining <> 0""")
        return
    for start in range(0, len(dated), 500):
        chunk = dated[start:start + 500]
        sql(f"INSERT INTO agg_lot_now (id) VALUES {', '.join(f'({p})' for _ in chunk)}", chunk)
    sql(f"""INSERT INTO agg_lot_new (id) SELECT l.id FROM ledger_entry e
        JOIN {_span_join('e.seq', bounds)} JOIN lot l ON l.id = e.id""")
    _analyze(db, postgres, "agg_lot_new")
    _analyze(db, postgres, "agg_lot_now")
    # New lots and lots dated now: what they have left (every allocation of theirs so far).
    _add_lots(db, zone, f"""SELECT l.expires_us, {store_of("e.seq")} AS store,
        l.remaining AS points FROM (SELECT id FROM agg_lot_new UNION SELECT id FROM agg_lot_now) n
        JOIN lot l ON l.id = n.id JOIN ledger_entry e ON e.id = l.id WHERE {dated_lot}""")
    # Older lots counted before: the new entries' allocations from them.
    _add_lots(db, zone, f"""SELECT l.expires_us, {store_of("i.seq")} AS store, a.points
        FROM ledger_entry e JOIN {_span_join('e.seq', bounds)}
        JOIN allocation a ON a.entry_id = e.id JOIN lot l ON l.id = a.lot_id
        JOIN ledger_entry i ON i.id = l.id
        WHERE {dated_lot} AND l.id NOT IN (SELECT id FROM agg_lot_new)
              AND l.id NOT IN (SELECT id FROM agg_lot_now)""")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, default=None,
                        help="the chain's rules TOML: its zone and tier window "
                             "(default: the example rules)")
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
            caught = catch_up(db, rules.zone, rules.tier_window_months)
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
