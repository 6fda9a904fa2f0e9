"""Ledger benchmarks, each printed as a ratio against this machine's own limit in the same run.

1. Completed sales per second through the store (engine + Peewee + one IMMEDIATE transaction with
   WAL and synchronous=FULL) against raw ``sqlite3`` transactions writing the same rows with the
   same pragmas on the same disk. Target: at least 0.7 of raw (the limit is the fsync).
2. At chain scale (default a million members, ten million ledger entries): the balance lookup
   through the store (p99 target under 1 ms) against a raw primary-key read, a member statement,
   and an expiry sweep of a million lots (target under 60 s).

Run: ``.venv/bin/python bench/bench_ledger.py [--members N] [--entries-per-member K]``;
``--sales-only`` runs the first comparison alone (``--customers 1``: every sale by one member).
The chain-scale data set is written with raw ``executemany`` into the store's own schema (it is
set-up, not the thing measured) and takes a few minutes and a few GB in a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terminal.loyalty.calendar import local_day  # noqa: E402
from terminal.loyalty.clock import from_micros, to_micros  # noqa: E402
from terminal.loyalty.operations import Registration, SaleRequest  # noqa: E402
from terminal.loyalty.pricing import Line  # noqa: E402
from terminal.loyalty.rules import Rules, load_rules  # noqa: E402
from terminal.loyalty.store import Identity, LedgerStore  # noqa: E402
from terminal.loyalty.store.database import PRAGMAS, open_database  # noqa: E402

KEY = b"bench-card-key-0123456789abcdef"
SHARED = Path(os.environ.get("POSTERM_SHARED", ROOT.parent / "shared"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_sales(rules_path: Path, work: Path, count: int, rounds: int = 10,
                customers: int = 200) -> None:
    """Store and raw writers alternate in ``rounds`` blocks, so a disk whose fsync time drifts
    (this machine is shared) weighs on both alike. The sales go round ``customers`` members (a
    till serves many; one member buying hundreds of times a day hits the daily earn cap and
    climbs the tiers). The raw side writes the very rows the store wrote for the same sales,
    read back between blocks (untimed), into its own file on the same disk."""
    rules = load_rules(rules_path)
    store = LedgerStore.open(work / "sales.db", rules, KEY, Identity("S001", "T01"))
    at = datetime(2026, 3, 2, 10, tzinfo=rules.zone)
    cards = [f"80{c:08d}" for c in range(1, customers + 1)]
    for card in cards:
        store.register(Registration(card=card), store.moment(at))
    lines = [Line("6900000000011", 2, 1250, category="fresh"),
             Line("6900000000028", 1, 4000, category="household")]
    raw_path = work / "raw.db"
    open_database(raw_path).close()
    raw = sqlite3.connect(raw_path, isolation_level=None)
    for name, value in PRAGMAS.items():
        raw.execute(f"PRAGMA {name}={value}")
    members = store.db.execute_sql("SELECT * FROM member").fetchall()
    raw.executemany(f"INSERT INTO member VALUES ({', '.join('?' * len(members[0]))})", members)

    def sell(first: int, last: int, clock: Any = time.perf_counter) -> float:
        start = clock()
        for n in range(first, last):
            store.sale(SaleRequest(id=f"B{n}", lines=lines, card=cards[n % customers]),
                       store.moment(at + timedelta(seconds=n)))
        return clock() - start

    def replay(first: int, last: int, clock: Any = time.perf_counter) -> float:
        rows = [written(store, rules, f"B{n}") for n in range(first, last)]
        start = clock()
        for sale in rows:
            raw_sale(raw, sale)
        return clock() - start

    store_time = raw_time = 0.0
    block = max(1, count // rounds)
    for r in range(rounds):
        store_time += sell(r * block, (r + 1) * block)
        raw_time += replay(r * block, (r + 1) * block)
    done = block * rounds
    store_rate, raw_rate = done / store_time, done / raw_time
    print(f"sales through the store   {store_rate:8.1f}/s")
    print(f"raw sqlite3, same rows    {raw_rate:8.1f}/s")
    print(f"ratio store/raw           {store_rate / raw_rate:8.2f}   (target >= 0.70)")
    # The same again without the fsync: what a sale costs in CPU (this process's, so other
    # processes on a shared machine weigh less), store and raw.
    store.db.execute_sql("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA synchronous=OFF")
    store_time = sell(done, done + count, time.process_time)
    raw_time = replay(done, done + count, time.process_time)
    print(f"CPU per sale, no fsync    store {store_time / count * 1e6:.0f} us, "
          f"raw {raw_time / count * 1e6:.0f} us   (synchronous=OFF, not the comparison)")
    store.close()
    raw.close()


def written(store: LedgerStore, rules: Rules, sale_id: str) -> dict[str, Any]:
    """What the store wrote for one sale: its rows, and the values of its upserts."""
    sql = store.db.execute_sql
    sale = sql("SELECT * FROM sale WHERE id = ?", (sale_id,)).fetchone()
    entries = sql("SELECT * FROM ledger_entry WHERE sale_id = ? ORDER BY seq",
                  (sale_id,)).fetchall()
    event = sql("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1", (sale[1],)).fetchone()
    return {
        "sale": sale,
        "lines": sql("SELECT * FROM sale_line WHERE sale_id = ? ORDER BY line_no",
                     (sale_id,)).fetchall(),
        "entries": entries,
        "lots": [row for entry in entries
                 for row in sql("SELECT * FROM lot WHERE id = ?", (entry[0],)).fetchall()],
        "event": event,
        "member": (sale[10] - sale[11], sale[2]),  # the balance moves by earned - redeemed
        "day": (sale[2], local_day(from_micros(sale[3]), rules.zone).isoformat(), sale[10],
                sale[11], 0),
        "meta": (str(sale[3]), str(event[1])),  # the trusted floor (each sale later) and seq
    }


def raw_sale(raw: sqlite3.Connection, rows: dict[str, Any]) -> None:
    """One member sale's rows by hand, as the store wrote them: the sale, its lines, the earn
    entry and its lot, the member's balance, the day counter, the outbox event and the meta
    counters; one transaction, after reading the counters as any writer must."""
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'trusted_floor_us')").fetchall()
    raw.execute(f"INSERT INTO sale VALUES ({', '.join('?' * 17)})", rows["sale"])
    raw.executemany(f"INSERT INTO sale_line VALUES ({', '.join('?' * 9)})", rows["lines"])
    for entry in rows["entries"]:
        raw.execute(f"INSERT INTO ledger_entry VALUES ({', '.join('?' * 12)})", entry)
    for lot in rows["lots"]:
        raw.execute(f"INSERT INTO lot VALUES ({', '.join('?' * 7)})", lot)
    raw.execute("INSERT INTO member_day (member_id, day, earned, redeemed, offline_redeemed) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id, day) DO UPDATE SET "
                "earned = member_day.earned + excluded.earned, "
                "redeemed = member_day.redeemed + excluded.redeemed, "
                "offline_redeemed = member_day.offline_redeemed + excluded.offline_redeemed",
                rows["day"])
    raw.execute("UPDATE member SET balance = balance + ? WHERE id = ?", rows["member"])
    raw.execute(f"INSERT INTO outbox VALUES ({', '.join('?' * 8)})", rows["event"])
    raw.execute("INSERT INTO meta (key, value) VALUES ('trusted_floor_us', ?), ('seq', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows["meta"])
    raw.execute("COMMIT")


def build_chain(path: Path, members: int, per_member: int, zone_now: datetime) -> list[str]:
    """Members with ``per_member`` lots each (one bonus, the rest earns); each member's first lot
    expired a day ago, the others expire within the next year. Returns some card numbers."""
    open_database(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    for name, value in PRAGMAS.items():
        db.execute(f"PRAGMA {name}={value}")
    db.execute("PRAGMA synchronous=OFF")  # set-up only; the measured paths reopen with FULL
    now_us = to_micros(zone_now)
    day = 86_400_000_000
    seq = 0
    cards = []
    chunk = 20_000
    for base in range(0, members, chunk):
        db.execute("BEGIN")
        member_rows, entry_rows, lot_rows = [], [], []
        for m in range(base, min(members, base + chunk)):
            card = f"9{m:011d}"
            if m % (members // 1000 or 1) == 0:
                cards.append(card)
            member_id = f"m{m:08d}"
            card_hash = hmac.new(KEY, b"card:" + card.encode(), hashlib.sha256).hexdigest()
            member_rows.append((member_id, card_hash, card[-4:], "", now_us - 400 * day,
                                "member", 100 * per_member))
            for k in range(per_member):
                seq += 1
                entry_id = f"e{m:08d}{k:03d}"
                earned = now_us - (380 - k * 30) * day
                expires = now_us - day if k == 0 else now_us + (k * 30) * day
                entry_rows.append((entry_id, seq, member_id, "bonus" if k == 0 else "earn", 100,
                                   earned))
                lot_rows.append((entry_id, member_id, earned, expires))
        db.executemany("INSERT INTO member (id, card_hash, card_last4, name, phone_last4, "
                       "registered_us, tier, balance, debt, referral_paid) "
                       "VALUES (?,?,?,?,'',?,?,?,0,0)",
                       member_rows)
        db.executemany("INSERT INTO ledger_entry (id, seq, member_id, kind, points, debt_delta, "
                       "reason, operator, wall_us, trusted) VALUES (?,?,?,?,?,0,'','',?,1)",
                       entry_rows)
        db.executemany("INSERT INTO lot (id, member_id, earned_us, expires_us, points, "
                       "remaining, dated_trusted) VALUES (?,?,?,?,100,100,1)", lot_rows)
        db.execute("COMMIT")
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seq', ?)", (str(seq),))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return cards


def bench_chain(rules_path: Path, work: Path, members: int, per_member: int) -> None:
    rules = load_rules(rules_path)
    now = datetime(2027, 6, 1, 12, tzinfo=rules.zone)
    path = work / "chain.db"
    start = time.perf_counter()
    cards = build_chain(path, members, per_member, now)
    print(f"\nchain data set: {members:,} members, {members * per_member:,} entries and lots, "
          f"built in {time.perf_counter() - start:.0f} s, {path.stat().st_size / 2**30:.2f} GiB")
    store = LedgerStore.open(path, rules, KEY, Identity("HQ", "bench"))
    moment = store.moment(now)
    lookups, views, raw_lookups = [], [], []
    raw = sqlite3.connect(path)
    for _ in range(3):
        for card in cards:
            t0 = time.perf_counter()
            store.balance(card)
            lookups.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.member(card, moment)
            views.append(time.perf_counter() - t0)
            card_hash = hmac.new(KEY, b"card:" + card.encode(), hashlib.sha256).hexdigest()
            t0 = time.perf_counter()
            raw.execute("SELECT balance FROM member WHERE card_hash = ?", (card_hash,)).fetchone()
            raw_lookups.append(time.perf_counter() - t0)
    raw.close()
    p99, raw_p99 = pct(lookups, 0.99) * 1e3, pct(raw_lookups, 0.99) * 1e3
    print(f"balance lookup (store.balance)    p50 {statistics.median(lookups) * 1e3:.3f} ms, "
          f"p99 {p99:.3f} ms   (target p99 < 1 ms: ratio {p99 / 1.0:.2f})")
    print(f"full member view (spend, expiring) p50 {statistics.median(views) * 1e3:.3f} ms, "
          f"p99 {pct(views, 0.99) * 1e3:.3f} ms")
    print(f"raw primary-key read              p99 {raw_p99:.3f} ms   "
          f"(store/raw {p99 / raw_p99:.1f}x)")
    t0 = time.perf_counter()
    statement = store.statement(cards[len(cards) // 2], moment)
    print(f"member statement ({len(statement['entries'])} entries) "
          f"{(time.perf_counter() - t0) * 1e3:.2f} ms")
    t0 = time.perf_counter()
    result = store.expire(moment)
    took = time.perf_counter() - t0
    print(f"expiry sweep: {result.lots:,} lots, {result.points:,} points in {took:.1f} s "
          f"({result.lots / took:,.0f} lots/s; target < 60 s: ratio {took / 60:.2f})")
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=SHARED / "examples" / "rules.toml")
    parser.add_argument("--sales", type=int, default=1200,
                        help="sales on each side (the machine is shared: a short run is noise)")
    parser.add_argument("--customers", type=int, default=200,
                        help="members the sales go round (1: every sale by the same member)")
    parser.add_argument("--sales-only", action="store_true",
                        help="only the sales comparison (as --members 0)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries-per-member", type=int, default=10)
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        print(f"posterm ledger benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
              f"SQLite {sqlite3.sqlite_version}, work dir {work}")
        bench_sales(args.rules, Path(work), args.sales, customers=args.customers)
        if args.members and not args.sales_only:
            bench_chain(args.rules, Path(work), args.members, args.entries_per_member)
    return 0


if __name__ == "__main__":
    sys.exit(main())
