"""Backtest replay speed: the window replayed under the rules in force and under a candidate
(the earn rate tripled), as a backtest does, in one process and then over ``--workers``
processes (:mod:`terminal.hq.rules_studio.parallel`), printed as window events per second and
the time a window of ``--target`` events would take at that rate (issue 17 asks a 30-day
backtest at 1M members and 10M entries within 10 minutes).

Only the replay is measured (reading the window from HQ's database is not): a synthetic
``History`` (tests/rules_studio/synthetic.py) is built in memory, afresh for each run (so no
run finds what an earlier one made of its events). Deterministic (seeded), and the parallel
figures are checked equal to the one-process ones. Besides the wall time, the CPU seconds of
this process and its workers: on a machine other work shares, the wall time says what the
load left us, the CPU seconds what the replay costs.

Run: ``.venv/bin/python bench/bench_backtest.py [--members N] [--sales-per-member K]
[--workers W] [--rounds R]``

``--chain MEMBERS`` measures instead the whole backtest from HQ's database, as ``posterm-hq rules
backtest --days 30`` runs it (:mod:`terminal.hq.rules_studio.stream`: read a span of members at a
time, replay, keep the sums): a private PostgreSQL server (fsync off) holding
``bench_analytics.populate``'s chain (MEMBERS members, ten ledger entries each, half of them
sales' earnings, over two years; ``--keep DIR`` keeps its data directory for the next run and
reuses it). Each run prints the wall time, the CPU seconds of this process and its workers, of
the PostgreSQL server, the time this process waited for a CPU (``/proc/self/schedstat``: the
load's share of the wall time) and the largest resident memory of this process and of a worker.
(That chain's ledger is not what the rules would have recorded: the in-force check's result is
printed, not required.)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_analytics import populate
from terminal.hq.database import open_hq_database
from terminal.hq.rules_studio import stream
from terminal.hq.rules_studio.parallel import default_workers, replay_both
from terminal.hq.rules_studio.validate import validate
from terminal.loyalty.rules import load_rules
from tests.rules_studio.synthetic import history
from tests.support.postgres import Postgres
from tests.support.shared import EXAMPLES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--sales-per-member", type=int, default=5)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--rounds", type=int, default=1,
                        help="times to run each, alternating (the machine's load moves)")
    parser.add_argument("--target", type=int, default=10_000_000,
                        help="events in the window to project to")
    parser.add_argument("--chain", type=int, default=0, metavar="MEMBERS",
                        help="the backtest from a PostgreSQL chain of MEMBERS members instead")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="with --chain: the server's directory, kept and reused")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--statements", action="store_true",
                        help="with --chain: the server's ten costliest statements of each run "
                             "(pg_stat_statements)")
    args = parser.parse_args()
    rules = load_rules(EXAMPLES / "rules.toml")
    text = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")
    candidate = validate(text.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")).rules
    assert candidate is not None
    if args.chain:
        from_database(args, rules, candidate)
        return
    made = history(args.members, args.sales_per_member)
    events = len(made.events)
    print(f"window: {events:,} events of {args.members:,} members; load average "
          f"{os.getloadavg()[0]:.1f}; {default_workers()} CPUs for this process")
    results = {}
    # Alternate the two, so a load that rises or falls during the run touches both alike.
    for workers in [1, args.workers] * args.rounds:
        fresh = history(args.members, args.sales_per_member)  # nothing cached from a run before
        began, cpu = time.perf_counter(), _cpu()
        results[workers] = replay_both(fresh, rules, candidate, workers, min_events=0)
        took, used = time.perf_counter() - began, _cpu() - cpu
        rate = events / took
        print(f"{workers} process(es): both replays in {took:.1f} s: {rate:,.0f} window "
              f"events/s; {args.target:,} events would take {args.target / rate / 60:.1f} min: "
              f"{args.target / rate / 600:.2f}x the 10-minute budget; {used:.1f} CPU-s "
              f"({events / used:,.0f} events per CPU-second, this process and its workers); "
              f"load average {os.getloadavg()[0]:.1f}")
    one, many = results[1], results[args.workers]
    same = all(a.chain == b.chain and a.members == b.members and a.tier_end == b.tier_end
               for a, b in zip(one, many, strict=True))
    print(f"parallel figures equal the one-process ones: {same}; candidate issued "
          f"{many[1].chain.points_issued}, liability {many[1].chain.liability_end}")


def from_database(args: argparse.Namespace, rules: Any, candidate: Any) -> None:
    server = Postgres(args.keep)
    if args.statements:  # as bench/sweep_probe.py does
        server._settings += ["-c", "shared_preload_libraries=pg_stat_statements"]
    server.start()
    try:
        db = open_hq_database(server.dsn)
        members = db.execute_sql("SELECT count(*) FROM member").fetchone()[0]
        if not members:
            print(f"building the chain: {args.chain:,} members, {args.chain * 10:,} entries",
                  flush=True)
            populate(db, args.chain, 10)
            members = args.chain
        entries = db.execute_sql("SELECT count(*) FROM ledger_entry").fetchone()[0]
        if args.statements:
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        db.close()
        time.sleep(1)  # the server reaps the closed backend, whose CPU is then not the runs'
        print(f"chain: {members:,} members, {entries:,} ledger entries; {args.days}-day "
              f"backtest; load average {os.getloadavg()[0]:.1f}", flush=True)
        assert server.process is not None
        results = []
        for workers in [args.workers] * args.rounds:  # --workers 1: one process
            if args.statements:
                _statements(server.dsn, reset=True)
            began, cpu, server_cpu, waited = (time.perf_counter(), _cpu(),
                                              _tree_cpu(server.process.pid), _waited())
            result = stream.run(server.dsn, rules, candidate, args.days, workers=workers,
                                progress=_every_minute(began))
            took = time.perf_counter() - began
            events = result["window"]["events"]
            print(f"{workers} process(es): {events:,} window events in {took:.1f} s "
                  f"({took / 600:.2f}x the 10-minute budget); CPU {_cpu() - cpu:.1f} s here "
                  f"and in the workers, {_tree_cpu(server.process.pid) - server_cpu:.1f} s "
                  f"PostgreSQL; this process waited {_waited() - waited:.1f} s for a CPU; "
                  f"max RSS {_rss(resource.RUSAGE_SELF):.0f} MB here, "
                  f"{_rss(resource.RUSAGE_CHILDREN):.0f} MB a worker; check matches: "
                  f"{result['check']['matches']}; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
            del result["check"]
            results.append(result)
            if args.statements:
                _statements(server.dsn)
        print(f"figures equal run to run: {all(r == results[0] for r in results)}; candidate "
              f"issued {results[0]['candidate']['points_issued']:,}, in force "
              f"{results[0]['in_force']['points_issued']:,}")
    finally:
        server.stop()


def _statements(dsn: str, reset: bool = False) -> None:
    db = open_hq_database(dsn, migrate=False)
    try:
        if reset:
            db.execute_sql("SELECT pg_stat_statements_reset()")
            return
        rows = db.execute_sql(
            "SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), "
            "150) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10").fetchall()
        for calls, ms, count, query in rows:
            print(f"  {ms / 1000:7.1f} s {calls:5d} calls {count:9,} rows  {query}")
    finally:
        db.close()


def _every_minute(began: float) -> Any:
    """A progress that prints how far the replay is once a minute."""
    told = [began]

    def progress(step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - told[0] >= 60:
            told[0] = now
            print(f"  {now - began:5.0f} s: {step} {done:,} / {total:,} events; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    return progress


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its ended children (the server and its closed backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _waited() -> float:
    """Seconds this process has waited on a run queue (ready, no CPU free)."""
    return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9


def _rss(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds used by this process and its ended children (the pool's workers)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
