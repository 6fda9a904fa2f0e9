"""The window's earlier sales are read a chunk of sales a statement: any chunk gives the same
history (lines, earlier refunds, what each redemption took from which lot), and the in-force
check still holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.hq.rules_studio.history import History, load_history
from terminal.hq.rules_studio.jobs import run_backtest
from terminal.loyalty.store.models import MODELS
from tests.rules_studio.chain import HandChain
from tests.rules_studio.test_backtest import IN_FORCE, TRIPLE_EARN


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[HandChain]:
    made = HandChain(tmp_path, IN_FORCE)
    yield made
    made.close()


def _read(url: str, chunk: int) -> History:
    db = open_hq_database(url, migrate=False)
    try:
        with db.bind_ctx(MODELS + HQ_MODELS):
            return load_history(10, IN_FORCE.zone, past_chunk=chunk)
    finally:
        db.close()


def test_earlier_sales_read_in_chunks_give_the_same_history(chain: HandChain) -> None:
    chain.register("S001", "wang", "2026-10-01T09:00")
    chain.register("S002", "li", "2026-10-01T09:30")
    earlier = []
    for day, (who, store) in enumerate([("wang", "S001"), ("li", "S002")] * 3, start=2):
        earlier.append(chain.sale(store, who, f"2026-10-{day:02d}T10:00",
                                  [("F1", 2, 5000, "fresh"), ("D1", 3, 1200, "drinks")]))
    earlier.append(chain.sale("S001", "wang", "2026-10-10T10:00",
                              [("H1", 1, 90000, "household")], redeem=500))
    for sale in earlier[:3]:  # a part handed back before the window, the rest in it
        chain.refund(sale[:4], sale, "2026-10-12T10:00", [("D1", 1)])
    chain.sale("S001", "wang", "2026-11-21T10:00", [("D1", 1, 3000, "drinks")])
    for sale in earlier:
        chain.refund(sale[:4], sale, "2026-11-25T10:00")
    whole = _read(chain.url, 500)
    assert len(whole.past_sales) == len(earlier)
    assert sum(len(sale.refunds) for sale in whole.past_sales.values()) == 3
    assert [sale.redeemed_from for sale in whole.past_sales.values() if sale.redeemed]
    for chunk in (1, 2, 4):
        assert _read(chain.url, chunk).past_sales == whole.past_sales
    result = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 10)
    assert result["check"]["matches"], result["check"]
    assert result["in_force"]["points_reversed"] > 0
    assert result["in_force"]["points_restored"] == 500
