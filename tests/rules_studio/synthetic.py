"""A synthetic window for the backtest's speed and its parallel replay's tests: members with
opening lots, sales spread over 30 days, a tenth of them refunded in part, one in five
redeeming. Deterministic (seeded)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from terminal.hq.rules_studio.history import (
    History,
    Recorded,
    RefundEvent,
    SaleEvent,
    SoldItem,
)
from terminal.loyalty.ledger import Lot

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
