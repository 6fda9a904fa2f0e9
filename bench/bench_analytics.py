"""Issue 13's analytics at chain scale on PostgreSQL: each one's time, against a trivial full scan
of the ledger measured in the same run.

A private PostgreSQL server (fsync off: set-up, not the thing measured) gets HQ's schema from its
migrations, then a chain written by the server itself (``INSERT ... SELECT generate_series``):
by default 1,000,000 members (home in 100 stores, a third of them silver or gold), 10,000,000
ledger entries (an earn per sale, a registration bonus per member, the rest redemptions and
adjustments), 5,000,000 member sales over two years with a line each (500 products in 20
categories), 1% of them refunded (half wholly, half a unit of two), an applied event per sale
naming its store and its span of the sequence, a lot per member. Each analytic then runs three
times (once when a run takes over 10 s) through the same code `posterm-hq report` and the console
run (models bound, one snapshot); the median is printed with its ratio to a trivial full scan of
the ledger, ``SELECT count(*), sum(points) FROM ledger_entry``, measured the same way.

Run: ``.venv/bin/python bench/bench_analytics.py [--members N] [--entries-per-member K]
[--keep DIR]``. A million members take some minutes and a few GB in a temporary directory;
``--keep DIR`` keeps the server's directory, and a later run reuses its chain and roll-ups
(rolled up again only when their version changed). Each figure is printed with the load
average (1 minute) when it was taken: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_console import bulk_load  # noqa: E402
from terminal.hq import (  # noqa: E402
    analytics,
    analytics_sql,
    day_reports,
    points_reports,
    rollup,
)
from terminal.hq.analytics import Period  # noqa: E402
from terminal.hq.database import (  # noqa: E402
    REPORT_WORK_MEM,
    open_hq_database,
    snapshot,
    tune_for_reports,
)
from terminal.hq.models import HQ_MODELS  # noqa: E402
from terminal.loyalty.rules import load_rules  # noqa: E402
from terminal.loyalty.store.models import MODELS  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.shared import EXAMPLES  # noqa: E402

T0_US = 1_733_011_200_000_000  # 2024-12-01 00:00 UTC: two years of history up to 2026-12-01
SPAN_US = 2 * 365 * 86_400_000_000
RUNS = 3


def populate(db: Any, members: int, per_member: int) -> None:
    """The chain (``mod()``, not ``%``: psycopg 3 reads a ``%`` as a placeholder). Sale ``s``
    (1-based) has sequence ``2s``, its earn entry; ``2s - 1`` is its member's other entry (a
    bonus for the first ``members`` of them, then redemptions and adjustments). Sale ``s``
    belongs to member ``1 + mod(s * 7919, members)`` and is at ``T0 + s * span / sales``."""
    sales = members * per_member // 2
    step = SPAN_US // sales
    member_of = f"'m' || lpad((1 + mod(s * 7919, {members}))::text, 9, '0')"
    sql = db.execute_sql
    steps = [
        ("member", f"""INSERT INTO member (id, card_hash, card_last4, name, phone_hash,
            phone_last4, birthday, referrer_id, referral_paid, registered_us, tier,
            tier_reviewed_us, balance, debt)
            SELECT 'm' || lpad(i::text, 9, '0'), md5('card' || i) || md5('c' || i),
                   right(i::text, 4), '会员' || i, NULL, '',
                   '19' || (50 + mod(i, 50)) || '-' || lpad((1 + mod(i, 12))::text, 2, '0')
                       || '-' || lpad((1 + mod(i, 28))::text, 2, '0'),
                   NULL, false, {T0_US} + mod(i * 104729, {SPAN_US // 1_000_000}) * 1000000,
                   CASE mod(i, 6) WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' WHEN 2
                        THEN 'silver' ELSE 'member' END, NULL, 100, 0
            FROM generate_series(1::bigint, {members}) AS i"""),
        ("member_home", f"""INSERT INTO member_home (member, store, since_us)
            SELECT 'm' || lpad(i::text, 9, '0'), 'S' || lpad((1 + mod(i, 100))::text, 3, '0'),
                   {T0_US} FROM generate_series(1::bigint, {members}) AS i"""),
        ("sale", f"""INSERT INTO sale (id, seq, member_id, wall_us, trusted, tender, list_fen,
            discount_fen, deduction_fen, paid_fen, points_earned, points_redeemed, earn_entry,
            redeem_entry, tier, operator, detail)
            SELECT 's' || s, s * 2, {member_of}, {T0_US} + s * {step}, true, 'cash',
                   1000 * (1 + mod(s, 40)), 0, 0, 1000 * (1 + mod(s, 40)), 1 + mod(s, 40), 0,
                   'e' || (s * 2), NULL, 'member', '', '{{}}'
            FROM generate_series(1::bigint, {sales}) AS s"""),
        ("sale_line", f"""INSERT INTO sale_line (sale_id, line_no, sku, name, category, qty,
            price_fen, list_fen, paid_fen)
            SELECT 's' || s, 1, 'SKU' || mod(s * 31, 500), '商品' || mod(s * 31, 500),
                   'C' || mod(mod(s * 31, 500), 20), 2, 500 * (1 + mod(s, 40)),
                   1000 * (1 + mod(s, 40)), 1000 * (1 + mod(s, 40))
            FROM generate_series(1::bigint, {sales}) AS s"""),
        ("refund", f"""INSERT INTO refund (id, seq, sale_id, kind, wall_us, trusted,
            refunded_fen, points_reversed, points_restored, operator)
            SELECT 'r' || s, {members * per_member} + s, 's' || s, 'refund',
                   {T0_US} + s * {step} + 3600000000, true,
                   CASE WHEN mod(s, 200) = 0 THEN 1000 * (1 + mod(s, 40))
                        ELSE 500 * (1 + mod(s, 40)) END, 0, 0, ''
            FROM generate_series(100::bigint, {sales}, 100) AS s"""),
        ("refund_line", """INSERT INTO refund_line (refund_id, line_no, qty, fen)
            SELECT id, 1, CASE WHEN mod(substr(id, 2)::bigint, 200) = 0 THEN 2 ELSE 1 END,
                   refunded_fen FROM refund"""),
        ("ledger_entry", f"""INSERT INTO ledger_entry (id, seq, member_id, kind, points,
            debt_delta, sale_id, reverses, reason, operator, wall_us, trusted)
            SELECT 'e' || n, n,
                   CASE WHEN n <= {2 * members} AND mod(n, 2) = 1
                        THEN 'm' || lpad((1 + (n - 1) / 2)::text, 9, '0')
                        ELSE 'm' || lpad((1 + mod(((n + 1) / 2) * 7919, {members}))::text, 9,
                                         '0') END,
                   CASE WHEN mod(n, 2) = 0 THEN 'earn' WHEN n <= {2 * members} THEN 'bonus'
                        WHEN mod(n, 7) = 0 THEN 'adjust' ELSE 'redeem' END,
                   CASE WHEN mod(n, 2) = 0 THEN 1 + mod(n / 2, 40) WHEN n <= {2 * members}
                        THEN 100 WHEN mod(n, 7) = 0 THEN 5 ELSE -1 END,
                   0, CASE WHEN mod(n, 2) = 0 THEN 's' || (n / 2) END, NULL, '', '',
                   {T0_US} + ((n + 1) / 2) * {step}, true
            FROM generate_series(1::bigint, {members * per_member}) AS n"""),
        ("lot", f"""INSERT INTO lot (id, member_id, earned_us, expires_us, points, remaining,
            dated_trusted)
            SELECT 'e' || (2 * i - 1), 'm' || lpad(i::text, 9, '0'), {T0_US},
                   {T0_US} + {SPAN_US} + mod(i, 120) * 86400000000, 100, 100, true
            FROM generate_series(1::bigint, {members}) AS i"""),
        ("applied_event", f"""INSERT INTO applied_event (id, store, terminal, seq, epoch, kind,
            wall_us, applied_us, outcome, detail, points_in, points_out, first_seq, last_seq)
            SELECT 'a' || s, 'S' || lpad((1 + mod(s, 100))::text, 3, '0'),
                   'T0' || (1 + mod(s, 3)), s, 1, 'sale', {T0_US} + s * {step},
                   {T0_US} + s * {step}, 'applied', '', 0, 0, s * 2 - 1, s * 2
            FROM generate_series(1::bigint, {sales}) AS s"""),
    ]
    bulk_load(db, steps)
    started = time.perf_counter()
    sql("VACUUM ANALYZE")
    print(f"  {'vacuum analyze':<14} {time.perf_counter() - started:6.1f} s", flush=True)


def add_minute(db: Any, members: int, base: int, sales: int = 1_000, refunds: int = 10) -> None:
    """A busy minute after the history, written as the collectors write (the roll-up's queue
    triggers on): ``sales`` member sales with a line, an earn entry and an applied event each,
    and ``refunds`` whole refunds of sales from the history (their members are recomputed)."""
    at = T0_US + SPAN_US
    with db.atomic():
        db.execute_sql(f"""INSERT INTO sale (id, seq, member_id, wall_us, trusted, tender,
            list_fen, discount_fen, deduction_fen, paid_fen, points_earned, points_redeemed,
            earn_entry, redeem_entry, tier, operator, detail)
            SELECT 'n{base}-' || s, {base} + 2 * s, 'm' || lpad((1 + mod(s * 7, {members}))::text,
                   9, '0'), {at} + s * 60000, true, 'cash', 3000, 0, 0, 3000, 30, 0,
                   'n{base}-e' || s, NULL, 'member', '', '{{}}'
            FROM generate_series(1::bigint, {sales}) AS s""")
        db.execute_sql(f"""INSERT INTO sale_line (sale_id, line_no, sku, name, category, qty,
            price_fen, list_fen, paid_fen)
            SELECT 'n{base}-' || s, 1, 'SKU1', '商品1', 'C1', 1, 3000, 3000, 3000
            FROM generate_series(1::bigint, {sales}) AS s""")
        db.execute_sql(f"""INSERT INTO ledger_entry (id, seq, member_id, kind, points,
            debt_delta, sale_id, reverses, reason, operator, wall_us, trusted)
            SELECT 'n{base}-e' || s, {base} + 2 * s - 1,
                   'm' || lpad((1 + mod(s * 7, {members}))::text, 9, '0'), 'earn', 30, 0,
                   'n{base}-' || s, NULL, '', '', {at} + s * 60000, true
            FROM generate_series(1::bigint, {sales}) AS s""")
        db.execute_sql(f"""INSERT INTO applied_event (id, store, terminal, seq, epoch, kind,
            wall_us, applied_us, outcome, detail, points_in, points_out, first_seq, last_seq)
            SELECT 'n{base}-a' || s, 'S' || lpad((1 + mod(s, 100))::text, 3, '0'), 'T01', s, 1,
                   'sale', {at} + s * 60000, {at} + s * 60000, 'applied', '', 30, 0,
                   {base} + 2 * s - 1, {base} + 2 * s
            FROM generate_series(1::bigint, {sales}) AS s""")
        db.execute_sql(f"""INSERT INTO refund (id, seq, sale_id, kind, wall_us, trusted,
            refunded_fen, points_reversed, points_restored, operator)
            SELECT 'n{base}-r' || s, {base} + 2 * {sales} + s, 's' || (s * 1013), 'void',
                   {at} + s * 60000, true, 1000 * (1 + mod(s * 1013, 40)), 0, 0, ''
            FROM generate_series(1::bigint, {refunds}) AS s""")
        db.execute_sql(f"""INSERT INTO refund_line (refund_id, line_no, qty, fen)
            SELECT 'n{base}-r' || s, 1, 2, 1000 * (1 + mod(s * 1013, 40))
            FROM generate_series(1::bigint, {refunds}) AS s""")


def timed(db: Any, work: Callable[[], Any]) -> tuple[float, int, Any]:
    """The median of RUNS runs of ``work`` in one snapshot each (one run when it takes over
    10 s), seconds, the runs, and its result."""
    times: list[float] = []
    result = None
    while len(times) < RUNS and sum(times) < 10:
        with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
            tune_for_reports(db)  # as `posterm-hq report` and the console read
            started = time.perf_counter()
            result = work()
            times.append(time.perf_counter() - started)
    return statistics.median(times), len(times), result


def top_seq(db: Any) -> int:
    """The highest sequence number written: a busy minute is numbered above it."""
    return int(db.execute_sql("""SELECT GREATEST((SELECT max(seq) FROM ledger_entry),
        (SELECT max(seq) FROM sale), (SELECT max(seq) FROM refund))""").fetchone()[0] or 0)


def segments_of(db: Any, period: Period, start_us: int | None) -> Any:
    """The period's RFM segments of the chain, by :func:`analytics_sql.member_figures`'s
    first days (``start_us``) or with its days grouped (None)."""
    bounds = (analytics.Thresholds().recency_days, analytics.Thresholds().frequency_days,
              analytics.Thresholds().monetary_fen)
    return analytics_sql.rolled_segments(db, period.start_day, period.end_day, None, bounds,
                                         period.month_days, start_us)


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries-per-member", type=int, default=10)
    parser.add_argument("--skip", default="", help="analytics not to run, comma-separated")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="the server's directory, kept and reused (its chain, roll-ups)")
    args = parser.parse_args()
    if args.entries_per_member < 4 or args.entries_per_member % 2:
        parser.error("--entries-per-member is an even number from 4")
    members, k = args.members, args.entries_per_member
    rules = load_rules(EXAMPLES / "rules.toml")
    server = Postgres(args.keep)
    server.start()
    try:
        db = open_hq_database(server.dsn)
        found = db.execute_sql("SELECT count(*) FROM member").fetchone()[0]
        if found:
            members = found
            print(f"chain kept in {args.keep}: {members:,} members", flush=True)
        else:
            print(f"chain: {members:,} members, {members * k:,} ledger entries, "
                  f"{members * k // 2:,} member sales over two years ({load()})", flush=True)
            with db.bind_ctx(MODELS + HQ_MODELS):
                populate(db, members, k)
        started = time.perf_counter()
        built = rollup.catch_up(db, rules.zone)
        print(f"  {'roll-ups built' if built.rebuilt else 'roll-ups kept':<14} "
              f"{time.perf_counter() - started:6.1f} s ({built.members:,} members, "
              f"{built.entries:,} entry groups; {load()})", flush=True)
        runs = db.execute_sql("SELECT count(*), count(DISTINCT member) FROM agg_member_span"
                              ).fetchone()
        print(f"  tier-window runs (agg_member_span): {runs[0]:,} rows, {runs[1]:,} members",
              flush=True)
        if built.rebuilt:
            started = time.perf_counter()
            db.execute_sql("VACUUM ANALYZE " + ", ".join(rollup.TABLES))  # as autovacuum would
            print(f"  {'vacuum them':<14} {time.perf_counter() - started:6.1f} s", flush=True)
        catch_ups = []
        for _ in range(3):
            add_minute(db, members, top_seq(db) + 1_000_000)
            started = time.perf_counter()
            caught = rollup.catch_up(db, rules.zone)
            catch_ups.append(time.perf_counter() - started)
        idle = []
        for _ in range(3):
            started = time.perf_counter()
            rollup.catch_up(db, rules.zone)
            idle.append(time.perf_counter() - started)
        print(f"  catch-up after a minute of 1,000 sales and 10 refunds: "
              f"{', '.join(f'{t:.2f}' for t in catch_ups)} s ({caught.members:,} members); "
              f"with nothing new: {statistics.median(idle) * 1000:.0f} ms ({load()})", flush=True)
        month = Period(date(2026, 10, 1), date(2026, 11, 1), rules.zone)
        year = Period(date(2025, 11, 1), date(2026, 11, 1), rules.zone)
        today = datetime.now(rules.zone).date()  # the console's default: 30 days to today
        recent = Period(today - timedelta(days=29), today + timedelta(days=1), rules.zone)
        mid = Period(date(2026, 10, 15), date(2026, 11, 15), rules.zone)  # 14 days from kept
        # ``to`` days no window was kept at (only agg_member_span's runs: HQ migration 28).
        between = {day: Period(day - timedelta(days=30), day, rules.zone)
                   for day in (date(2026, 11, 8), date(2026, 11, 23), date(2025, 12, 10))}
        with db.bind_ctx(MODELS + HQ_MODELS):
            first = analytics.dormant_members(month, None, 90, limit=500)
        deep = (first[-1][1], first[-1][0]) if first else None
        work: dict[str, Callable[[], Any]] = {
            "report analytics, chain, a month": lambda: analytics.analytics(rules, month),
            "report analytics, one store, a month": lambda: analytics.analytics(
                rules, month, "S001"),
            "  member figures (chain)": lambda: analytics.buyers(month),
            "  top products and categories": lambda: [analytics_sql.rolled_top_sold(
                db, month.start_day, month.end_day, None, by, 10) for by in ("sku", "category")],
            "  tiers and new members": lambda: (analytics.tiers(rules, None),
                                                analytics._members(None).count()),
            "report analytics, chain, 30 days to today": lambda: analytics.analytics(
                rules, recent),
            "  member figures, 30 days to today": lambda: analytics.buyers(recent),
            "report analytics, one store, 30 days to today": lambda: analytics.analytics(
                rules, recent, "S001"),
            "dormant list, a page of 500 (chain)": lambda: analytics.dormant_members(
                month, None, 90, limit=500),
            "dormant list, the next page": lambda: analytics.dormant_members(
                month, None, 90, limit=500, after=deep),
            "near next tier list (chain)": lambda: analytics.near_tier(rules, month, None),
            "near next tier list, to today": lambda: analytics.near_tier(rules, recent, None),
            "near next tier list, to 2026-11-15 (mid-month)": lambda: analytics.near_tier(
                rules, mid, None),
            **{f"near next tier list, to {day}": (lambda p=period: analytics.near_tier(
                rules, p, None)) for day, period in between.items()},
            "report analytics, chain, to 2026-11-15": lambda: analytics.analytics(rules, mid),
            "  member figures, to 2026-11-15": lambda: analytics.buyers(mid),
            # Its purchasers' RFM segments both ways in the same run: each purchaser's first
            # day in the period (now), and every day grouped by member (before session 10).
            "  its segments, first days (now)": lambda: segments_of(db, mid, mid.start_us),
            "  its segments, days grouped (before)": lambda: segments_of(db, mid, None),
            "near next tier counts, one store, a month": lambda: analytics.near_tier_counts(
                rules, month, "S001"),
            "report points, a year by month": lambda: points_reports.points_flow(
                rules, year, "month"),
            "report expiring 30/60/90": lambda: points_reports.expiring(
                rules, date(2026, 11, 1)),
            "report settlement, a month": lambda: points_reports.settlement(rules, month),
            "report z, a month": lambda: day_reports.day_reports(month),
        }
        skip = {name.strip() for name in args.skip.split(",") if name.strip()}
        print(f"server work_mem {db.execute_sql('SHOW work_mem').fetchone()[0]}; each report's "
              f"transaction: jit off, work_mem {REPORT_WORK_MEM} (tune_for_reports)", flush=True)
        scan, _, counted = timed(db, lambda: db.execute_sql(
            "SELECT count(*), sum(points) FROM ledger_entry").fetchone())
        print(f"\ntrivial full scan of ledger_entry ({counted[0]:,} rows): {scan * 1000:.0f} ms "
              f"(median of {RUNS}; {load()})")
        print(f"\n{'analytic':<44} {'median s':>9} {'x scan':>7} {'runs':>5}  load "
              "(target < 1 s)")
        missed = []
        for name, job in work.items():
            if any(name.startswith(prefix) for prefix in skip):
                print(f"{name:<44} {'skipped':>9}")
                continue
            seconds, runs, _ = timed(db, job)
            if seconds >= 1:
                missed.append(name)
            print(f"{name:<44} {seconds:9.2f} {seconds / scan:7.1f} {runs:5}  "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
        print("\nunder 1 s: " + ("every one" if not missed else
                                 "MISSED by " + "; ".join(missed)))
        db.close()
        return 0 if not missed else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
