"""`posterm-hq report analytics`: issue 13's definitions on a hand-made chain.

Two real tills (their own ledger stores) ring up every sale and refund, and HQ's chain ledger
applies their events as the collectors do, so the figures are read from the very rows HQ keeps.
Times are UTC; the programme's zone is Asia/Shanghai (UTC+8), so 16:00 UTC is local midnight.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from terminal.hq.analytics import Thresholds
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.cli import main
from terminal.hq.database import open_hq_database
from terminal.hq.demo import DemoTill
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import load_rules
from tests.support.shared import EXAMPLES

KEY = b"chain-card-key-0123456789abcdef"
RULES = EXAMPLES / "rules.toml"
COLA = ("6901234567892", "可口可乐", "drinks", 350)
RICE = ("6900000000021", "大米 5kg", "grocery", 5000)
SOAP = ("6900000000038", "香皂", "household", 800)
A, B, C, D, E = "8000000001", "8000000002", "8000000003", "8000000004", "8000000005"


def at(month: int, day: int, hour: int, minute: int = 0) -> Moment:
    return Moment(datetime(2026, month, day, hour, minute, tzinfo=UTC))


def line(goods: tuple[str, str, str, int], qty: int) -> Line:
    sku, name, category, price = goods
    return Line(sku, qty, price, name, category)


class Chain:
    """HQ's chain ledger and the tills whose events it applies as soon as they are written."""

    def __init__(self, db: str, scratch: Path) -> None:
        self.rules = load_rules(RULES)
        self.ledger = ChainLedger(open_hq_database(db), self.rules, KEY)
        self.tills = {store: DemoTill(scratch, self.rules, KEY, (store, "T01"))
                      for store in ("S001", "S002")}
        self.sales = 0

    def close(self) -> None:
        for till in self.tills.values():
            till.store.close()
        self.ledger.close()

    def _to_hq(self, till: DemoTill) -> None:
        outcomes = self.ledger.thread.call(self.ledger.apply, till.new_events())
        assert all(outcome.ack for outcome in outcomes), [o.detail for o in outcomes]

    def register(self, store: str, card: str, moment: Moment) -> None:
        till = self.tills[store]
        till.call(till.store.register, Registration(card=card, operator="cashier"), moment)
        till.known.add(card)
        self._to_hq(till)

    def sell(self, store: str, card: str, moment: Moment, *lines: Line) -> str:
        till = self.tills[store]
        if card not in till.known:  # a member of another store, identified online
            till.call(till.store.import_member, card, "member", moment, operator="cashier")
            till.known.add(card)
        self.sales += 1
        result = till.call(till.store.sale, SaleRequest(
            f"{store}-{self.sales:04d}", list(lines), card=card, operator="cashier"), moment)
        self._to_hq(till)
        return result.id

    def refund(self, store: str, sale_id: str, moment: Moment,
               part: list[tuple[str, int]] | None = None, kind: str = "refund") -> None:
        till = self.tills[store]
        till.call(till.store.refund, sale_id, part, moment, operator="manager", kind=kind)
        self._to_hq(till)


def build(chain: Chain) -> None:
    """The hand-made chain; the period under test is October 2026 (Shanghai days)."""
    chain.register("S001", E, at(6, 1, 2))
    chain.sell("S001", E, at(6, 5, 2), line(SOAP, 1))  # E's only sale: dormant by November
    chain.register("S001", A, at(9, 1, 2))
    chain.register("S002", C, at(9, 1, 3))
    # 23:59 on 30 September in Shanghai, then midnight of 1 October, then 1 October again.
    chain.sell("S001", A, at(9, 30, 15, 59), line(RICE, 1))
    chain.sell("S001", A, at(9, 30, 16), line(COLA, 2))
    chain.sell("S001", A, at(10, 1, 2), line(SOAP, 1))
    chain.register("S001", B, at(10, 2, 2))
    chain.sell("S001", B, at(10, 3, 2), line(COLA, 1))
    chain.sell("S001", B, at(10, 5, 2), line(RICE, 2))
    voided = chain.sell("S002", C, at(10, 10, 2), line(SOAP, 3))
    chain.refund("S002", voided, at(10, 11, 2), kind="void")  # wholly: C's sale does not count
    chain.sell("S002", A, at(10, 12, 2), line(RICE, 1))  # A at another store
    chain.register("S002", D, at(10, 15, 2))  # D never buys
    kept = chain.sell("S002", C, at(10, 20, 2), line(COLA, 2), line(SOAP, 1))
    chain.refund("S002", kept, at(10, 21, 2), part=[(COLA[0], 1)])  # partly: it counts
    chain.sell("S002", C, at(10, 31, 16), line(RICE, 1))  # midnight of 1 November: outside


ChainT = TypeVar("ChainT", bound="Chain")


def built_chain(request: pytest.FixtureRequest, tmp_path: Path, make: Callable[[str, Path], ChainT],
                build: Callable[[ChainT], None]) -> tuple[str, ChainT]:
    """HQ's database (SQLite or PostgreSQL, by the fixture's parameter) with ``build``'s chain
    in it, made by ``make`` (a :class:`Chain`); the chain is closed, its record kept."""
    url = str(tmp_path / "hq.db")
    if request.param == "postgresql":
        from tests.hq.test_postgres_collector import fresh_database

        url = fresh_database(request.getfixturevalue("postgres"))
    (tmp_path / "tills").mkdir()
    chain = make(url, tmp_path / "tills")
    try:
        build(chain)
    finally:
        chain.close()
    return url, chain


@pytest.fixture(params=["sqlite", "postgresql"])
def hq_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield built_chain(request, tmp_path, Chain, build)[0]


def report(capsys: pytest.CaptureFixture[str], db: str, *extra: str) -> dict:
    assert main(["report", "analytics", "--db", db, "--rules", str(RULES), "--from",
                 "2026-10-01", "--to", "2026-11-01", *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_chain_over_october(hq_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = report(capsys, hq_db)
    # A (1 and 12 October), B (3 and 5 October) and C (20 October: its voided sale is not one).
    assert (data["purchasers"], data["repeat_purchasers"], data["repeat_rate"]) == (3, 2, 0.6667)
    assert data["new_members"] == 2  # B and D (who never bought)
    assert data["new_purchasers"] == 2  # B and C; A first bought at 23:59 on 30 September
    assert (data["dormant"], data["churn_rate"]) == (1, 0.25)  # E, of A, B, C and E
    assert data["rfm"]["segments"] == {
        "R4F2M1": 1,  # A: 20 days, 2 days, 700 + 800 + 5000 fen
        "R4F2M2": 1,  # B: 27 days, 2 days, 350 + 10000 fen
        "R4F1M1": 1,  # C: 12 days, 1 day, 700 + 800 - 350 fen
    }
    assert data["top_products"] == [
        {"sku": RICE[0], "name": RICE[1], "qty": 3, "paid_fen": 15000},
        {"sku": SOAP[0], "name": SOAP[1], "qty": 2, "paid_fen": 1600},
        {"sku": COLA[0], "name": COLA[1], "qty": 4, "paid_fen": 1400},
    ]
    assert [row["category"] for row in data["top_categories"]] == [
        "grocery", "household", "drinks"]
    assert data["tiers"] == {"member": 5, "silver": 0, "gold": 0, "diamond": 0}
    assert data["near_next_tier"] == 0


def test_a_store_counts_its_own_sales_and_home_members(
    hq_db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    first = report(capsys, hq_db, "--store", "S001")
    assert (first["purchasers"], first["repeat_purchasers"], first["repeat_rate"]) == (2, 1, 0.5)
    assert (first["new_members"], first["new_purchasers"]) == (1, 1)  # B
    assert (first["dormant"], first["churn_rate"]) == (1, 0.3333)  # E, of A, B and E
    assert first["tiers"]["member"] == 3  # A, B and E are at home in S001
    second = report(capsys, hq_db, "--store", "S002")
    # A's first sale at S002 is in October: a new purchaser there.
    assert (second["purchasers"], second["repeat_purchasers"], second["repeat_rate"],
            second["new_members"], second["new_purchasers"]) == (2, 0, 0.0, 1, 2)
    assert [row["sku"] for row in second["top_products"]] == [RICE[0], SOAP[0], COLA[0]]


def test_the_text_output_names_the_figures_in_chinese_first(
    hq_db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["report", "analytics", "--db", hq_db, "--rules", str(RULES), "--from",
                 "2026-10-01", "--to", "2026-11-01", "--store", "S001"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "2026-10-01 .. 2026-11-01 (Asia/Shanghai), 门店 store S001"
    figures = {label.strip(): value for label, value in
               (line.rsplit(None, 1) for line in lines[1:-1])}
    assert (figures["回购率 repeat rate"], figures["流失率 churn rate"]) == ("0.5", "0.3333")
    assert lines[-1] == "  等级 tiers: member 3, silver 0, gold 0, diamond 0"


def test_dormancy_window_and_empty_period(hq_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert report(capsys, hq_db, "--dormant-days", "150")["dormant"] == 0  # E: 149 days
    assert main(["report", "analytics", "--db", hq_db, "--rules", str(RULES), "--from",
                 "2027-01-01", "--to", "2027-02-01", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)
    assert (empty["purchasers"], empty["repeat_rate"], empty["rfm"]["segments"],
            empty["top_products"]) == (0, 0.0, {}, [])
    assert (empty["dormant"], empty["churn_rate"]) == (4, 1.0)  # nobody bought since October


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "2026-11-01", "--to", "2026-10-01"], "must be before --to"),
    (["--from", "2026-10-01", "--to", "1 Nov"], "a date YYYY-MM-DD"),
    (["--from", "2026-10-01", "--to", "2026-11-01", "--dormant-days", "0"], "at least 1"),
    (["--from", "2026-10-01", "--to", "2026-11-01", "--recency-days", "30,7,90,180"],
     "four rising numbers"),
    (["--from", "2026-10-01", "--to", "2026-11-01", "--monetary-fen", "1;2"],
     "four whole numbers"),
])
def test_bad_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              argv: list[str], message: str) -> None:
    db = tmp_path / "hq.db"
    assert main(["report", "analytics", "--db", str(db), "--rules", str(RULES), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()  # refused before opening (so making) a database


def test_rfm_scores_by_the_bounds() -> None:
    bounds = Thresholds((7, 30, 90, 180), (2, 3, 5, 8), (100, 200, 300, 400))
    assert bounds.score(7, 8, 400) == "R5F5M5"
    assert bounds.score(8, 7, 399) == "R4F4M4"
    assert bounds.score(181, 1, 99) == "R1F1M1"
    assert bounds.score(180, 2, 100) == "R2F2M2"


def test_the_plain_report_still_needs_its_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report"]) == 2
    assert "--db is required" in capsys.readouterr().err


def test_near_the_next_tier_and_a_sale_refunded_in_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Silver needs 100,000 fen over the window: 90,000 is within 10% of it, 89,999 is not,
    and 100,000 makes the member silver, far from gold. Two refunds that together bring back
    every unit make a sale wholly refunded."""
    db = str(tmp_path / "hq.db")
    (tmp_path / "tills").mkdir()
    chain = Chain(db, tmp_path / "tills")
    tv = ("6900000000045", "电视机", "appliances")
    try:
        for number, (card, fen) in enumerate(((A, 90_000), (B, 89_999), (C, 100_000))):
            chain.register("S001", card, at(10, 1, 2 + number))
            chain.sell("S001", card, at(10, 2, 2 + number), line((*tv, fen), 1))
        chain.register("S001", D, at(10, 1, 6))
        parted = chain.sell("S001", D, at(10, 3, 2), line(COLA, 2))
        chain.refund("S001", parted, at(10, 4, 2), part=[(COLA[0], 1)])
        chain.refund("S001", parted, at(10, 5, 2), part=[(COLA[0], 1)])
    finally:
        chain.close()
    data = report(capsys, db)
    assert data["tiers"] == {"member": 3, "silver": 1, "gold": 0, "diamond": 0}
    assert (data["near_next_tier"], data["near_next_tier_by_tier"]) == (
        1, {"silver": 1, "gold": 0, "diamond": 0})
    assert data["purchasers"] == 3  # not D, whose only sale came back in two refunds
    assert [row["sku"] for row in data["top_products"]] == [tv[0]]
