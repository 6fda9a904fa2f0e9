"""Where the chain-scale expiry sweep's time goes on PostgreSQL (issue 11).

    .venv/bin/python bench/sweep_probe.py --members 100000 [--fillfactor 80] [--chunk 10000]
        [--workers 2]

Makes the chain of ``bench_ingest.py --chain-scale`` (one lot a member, all due), prints the
indexes and size of ``lot`` and ``member``, EXPLAIN (ANALYZE, BUFFERS) of one chunk's statements
(rolled back), then runs the sweep on a ChainLedger and prints its time, the HOT share of the
updates of ``lot`` and ``member`` (pg_stat_user_tables) and the time per statement
(pg_stat_statements). ``--fillfactor`` (``--lot-fillfactor``) sets member's (lot's) fillfactor
and rewrites the table first.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import CARD_KEY, make_chain

from terminal.hq.batch import DUE_LOTS_BY_INDEX, DUE_LOTS_OF_MEMBERS, SET_BASED
from terminal.hq.database import open_hq_database
from terminal.loyalty.clock import to_micros
from terminal.loyalty.store import hotpath
from tests.support.postgres import Postgres

TABLES = ("lot", "member")


def pg_sql(sql: str) -> str:
    return sql.replace("?", "%s")


def describe(conn: psycopg.Connection) -> None:
    for table in TABLES:
        pages, options = conn.execute(
            "SELECT relpages, reloptions FROM pg_class WHERE relname = %s", (table,)).fetchone()
        print(f"{table}: {pages} pages, options {options}")
        for (definition,) in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                (table,)):
            print(f"    {definition}")
        for (trigger,) in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                (table,)):
            print(f"    trigger {trigger}")


def explain(conn: psycopg.Connection, sql: str, params: tuple[object, ...]) -> list[object]:
    plan = [row for (row,) in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)]
    print("\n".join(f"    {str(line)[:160]}" for line in plan))
    return plan


def one_chunk(dsn: str, chunk: int) -> None:
    as_of = to_micros(datetime.now(UTC))
    with psycopg.connect(dsn) as conn:
        print("-- one chunk's statements (rolled back)")
        due = conn.execute(pg_sql(DUE_LOTS_BY_INDEX), (as_of, chunk)).fetchall()
        members = sorted({m for _, m, _ in due})
        print("DUE_LOTS_BY_INDEX")
        explain(conn, pg_sql(DUE_LOTS_BY_INDEX), (as_of, chunk))
        print("DUE_LOTS_OF_MEMBERS")
        explain(conn, pg_sql(DUE_LOTS_OF_MEMBERS), (members, as_of, chunk))
        print("EMPTY_LOT (set-based)")
        explain(conn, SET_BASED[hotpath.EMPTY_LOT], (sorted(lot for lot, _, _ in due),))
        print("TAKE_FROM_BALANCE (set-based)")
        points = [r for _, _, r in due]
        ids = [m for _, m, _ in due]
        explain(conn, SET_BASED[hotpath.TAKE_FROM_BALANCE], (points, ids, ids))
        conn.rollback()


def counts(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    return {name: (upd, hot) for name, upd, hot in conn.execute(
        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)", (list(TABLES),))}


def sweep(dsn: str, chunk: int, workers: int) -> None:
    from terminal.hq.chain_ledger import ChainLedger
    from terminal.hq.policy import TrustPolicy
    from terminal.loyalty.rules import Rules
    from tests.sync.harness import rules_data

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")
    ledger = ChainLedger(open_hq_database(dsn), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=TrustPolicy())
    try:
        began = time.perf_counter()
        swept = ledger.thread.call(ledger.expire, datetime.now(UTC), chunk, workers)
        took = time.perf_counter() - began
    finally:
        ledger.close()
    print(f"-- sweep of {swept.lots} lots in chunks of {chunk}, {workers} connection(s): "
          f"{took:.1f} s")
    time.sleep(1)  # the statistics collector's report interval (PostgreSQL 15: at idle)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, (upd, hot) in sorted(counts(conn).items()):
            print(f"{table}: n_tup_upd {upd}, n_tup_hot_upd {hot}")
        total = 0.0
        rows = conn.execute(
            "SELECT calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, "
            "shared_blks_dirtied, wal_records, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
            "FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12").fetchall()
        for calls, ms, nrows, hit, read, dirtied, wal, query in rows:
            total += ms
            print(f"  {ms / 1000:7.2f} s {calls:5d} calls {nrows:8d} rows hit {hit:8d} "
                  f"read {read:6d} dirtied {dirtied:6d} wal {wal:8d}  {query}")
        print(f"  listed statements: {total / 1000:.2f} s in the server of {took:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="the sweep's connections")
    parser.add_argument("--fillfactor", type=int, help="set on member, then rewrite it")
    parser.add_argument("--lot-fillfactor", type=int, help="set on lot, then rewrite it")
    args = parser.parse_args()
    postgres = Postgres()
    postgres._settings += ["-c", "shared_preload_libraries=pg_stat_statements"]
    postgres.start()
    try:
        dsn = make_chain(postgres, args.members, 10)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table, fillfactor in (("lot", args.lot_fillfactor),
                                      ("member", args.fillfactor)):
                if fillfactor:
                    conn.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")
                    conn.execute(f"VACUUM FULL {table}")
                    conn.execute(f"ANALYZE {table}")
            describe(conn)
        one_chunk(dsn, args.chunk)
        sweep(dsn, args.chunk, args.workers)
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
