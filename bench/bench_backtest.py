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
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal.hq.rules_studio.parallel import default_workers, replay_both
from terminal.hq.rules_studio.validate import validate
from terminal.loyalty.rules import load_rules
from tests.rules_studio.synthetic import history
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
    args = parser.parse_args()
    rules = load_rules(EXAMPLES / "rules.toml")
    text = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")
    candidate = validate(text.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")).rules
    assert candidate is not None
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


def _cpu() -> float:
    """CPU seconds used by this process and its ended children (the pool's workers)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
