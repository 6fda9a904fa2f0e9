"""Backtest replay speed: the pure replay (terminal.hq.rules_studio.replay) of a synthetic 30-day
window, printed as events per second and the time a window of ``--target`` events would take at
that rate (issue 17 asks a 30-day backtest at 1M members and 10M entries within 10 minutes).

Only the replay is measured (reading the window from HQ's database is not): a ``History`` is built
in memory, each member with opening lots, then sales spread over the window, a tenth of them
refunded in part, one in five redeeming. Deterministic (seeded), so runs compare.

Run: ``.venv/bin/python bench/bench_backtest.py [--members N] [--sales-per-member K]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal.hq.rules_studio.history import (
    History,
    Recorded,
    RefundEvent,
    SaleEvent,
    SoldItem,
)
from terminal.hq.rules_studio.replay import Replay
from terminal.loyalty.ledger import Lot
from terminal.loyalty.rules import load_rules
from tests.support.shared import EXAMPLES

END = datetime(2026, 11, 30, tzinfo=UTC)
GOODS = (("F1", "fresh", 1250), ("D1", "drinks", 350), ("H1", "household", 2890))


def history(members: int, sales_per_member: int, seed: int = 1) -> History:
    rng = random.Random(seed)
    start = END - timedelta(days=30)
    lots: dict[str, list[Lot]] = {}
    events: list[SaleEvent | RefundEvent] = []
    times = sorted(start + timedelta(seconds=rng.randrange(30 * 86400))
                   for _ in range(members * sales_per_member))
    for number in range(members):
        member = f"m{number:07d}"
        lots[member] = [Lot(f"lot-{member}", start - timedelta(days=60),
                            start + timedelta(days=300), 2000, 2000, number)]
    for seq, at in enumerate(times, start=members + 1):
        member = f"m{rng.randrange(members):07d}"
        sku, category, price = rng.choice(GOODS)
        sale = SaleEvent(seq * 2, at, True, f"s{seq}", member, f"S{rng.randrange(1, 4):03d}",
                         (SoldItem(sku, sku, category, rng.randint(1, 4), price),),
                         500 if rng.random() < 0.2 else 0)
        events.append(sale)
        if rng.random() < 0.1:
            events.append(RefundEvent(seq * 2 + 1, at + timedelta(minutes=5), True, sale.id,
                                      sale.store, ((1, 1),)))
    return History(start=start, until=END, first_seq=members + 1,
                   birthdays=dict.fromkeys(lots), homes=dict.fromkeys(lots, "S001"),
                   tiers=dict.fromkeys(lots, "member"), lots=lots, debt={}, events=events,
                   past_sales={}, spend=defaultdict(list), spend_back=defaultdict(list),
                   day_earned=defaultdict(int), recorded=Recorded(0, 0, 0, 0, 0, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--sales-per-member", type=int, default=5)
    parser.add_argument("--target", type=int, default=10_000_000,
                        help="events in the window to project to")
    args = parser.parse_args()
    rules = load_rules(EXAMPLES / "rules.toml")
    made = history(args.members, args.sales_per_member)
    began = time.perf_counter()
    out = Replay(made, rules).run()
    took = time.perf_counter() - began
    rate = len(made.events) / took
    print(f"replayed {len(made.events)} events of {args.members} members in {took:.1f} s: "
          f"{rate:,.0f} events/s; issued {out.chain.points_issued}, "
          f"liability {out.chain.liability_end}")
    print(f"projection: {args.target:,} events at this rate take {args.target / rate / 60:.1f} "
          f"min (target 10 min): ratio {args.target / rate / 600:.2f} of the budget")


if __name__ == "__main__":
    main()
