"""`posterm-hq report points | expiring | settlement` on a hand-made chain.

Real tills ring up every sale and HQ's chain ledger applies their events (the set-up of
test_analytics). Times are UTC; the programme's zone is Asia/Shanghai (UTC+8). The dates avoid
the example rules' promotions (Wednesdays, 1-7 October), so rice (grocery, 5,000 fen) earns 50
points a unit, registration 100, and 100 points are worth 1 yuan (fen equal points).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from peewee import fn

from terminal.hq.cli import main
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.operations import SaleRequest
from terminal.loyalty.store.models import Member
from terminal.loyalty.store.redeeming import HeldAtHq
from tests.hq.test_analytics import KEY, RICE, RULES, Chain, at, built_chain, line

A, B = "8000000011", "8000000012"


class Recorded(Chain):
    """The chain, noting HQ's sum of balances after each step (the steps come in time order)."""

    def __init__(self, db: str, scratch: Path) -> None:
        super().__init__(db, scratch)
        self.balances: list[tuple[int, int]] = []  # (wall µs, sum of balances)

    def note(self, moment: Moment) -> None:
        total = self.ledger.thread.call(
            lambda: int(Member.select(fn.COALESCE(fn.SUM(Member.balance), 0)).scalar()))
        self.balances.append((to_micros(moment.at), total))

    def register(self, store: str, card: str, moment: Moment) -> None:
        super().register(store, card, moment)
        self.note(moment)

    def sell(self, store: str, card: str, moment: Moment, *lines) -> str:  # type: ignore[override]
        sale_id = super().sell(store, card, moment, *lines)
        self.note(moment)
        return sale_id

    def redeem(self, store: str, card: str, moment: Moment, points: int) -> str:
        """A sale of one bag of rice at ``store`` taking ``points`` off: HQ could not be asked
        for a hold, so the till checks HQ's last known balance and HQ posts it on the event."""
        till = self.tills[store]
        if card not in till.known:
            till.call(till.store.import_member, card, "member", moment, operator="cashier")
            till.known.add(card)
        self.sales += 1
        hashed = card_hash(KEY, card)
        balance = self.ledger.thread.call(lambda: Member.get(Member.card_hash == hashed).balance)
        held = HeldAtHq(balance, str(uuid.uuid5(uuid.NAMESPACE_OID, str(self.sales))),
                        offline=True)
        request = SaleRequest(f"{store}-{self.sales:04d}", [line(RICE, 1)], card=card,
                              redeem_points=points, operator="cashier")
        result = till.call(till.store.sale, request, moment, online=False, held_at_hq=held)
        self._to_hq(till)
        self.note(moment)
        return result.id

    def liability_before(self, end_us: int) -> int:
        return max(((us, total) for us, total in self.balances if us < end_us),
                   default=(0, 0))[1]


def last_year(month: int, day: int, hour: int) -> Moment:
    return Moment(datetime(2025, month, day, hour, tzinfo=UTC))


def build(chain: Recorded) -> None:
    # B's lots: 100 + 50 at S001 expiring 20 November 2026, 50 at S002 on 15 December, 100 at
    # S001 on 20 January 2027.
    chain.register("S001", B, last_year(11, 20, 1))
    chain.sell("S001", B, last_year(11, 20, 2), line(RICE, 1))
    chain.sell("S002", B, last_year(12, 15, 2), line(RICE, 1))
    chain.sell("S001", B, at(1, 20, 2), line(RICE, 2))
    # A earns 100 + 600 at S001 by Monday 31 August (23:59 in Shanghai), 50 more at midnight
    # of 1 September, and redeems 500 at S002: the soonest-expiring lots, both S001's.
    chain.register("S001", A, at(8, 20, 2))
    chain.sell("S001", A, at(8, 31, 15, 59), line(RICE, 12))
    chain.sell("S001", A, at(8, 31, 16), line(RICE, 1))
    chain.redeem("S002", A, at(9, 11, 2), 500)  # pays 4,500 fen: earns 45 at S002


@pytest.fixture(params=["sqlite", "postgresql"])
def chain_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Recorded]]:
    yield built_chain(request, tmp_path, Recorded, build)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["report", *argv, "--rules", str(RULES), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_points_by_day_cut_at_shanghai_midnight(
    chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str],
) -> None:
    db, _ = chain_db
    data = run(capsys, "points", "--db", db, "--from", "2026-08-31", "--to", "2026-09-02",
               "--by", "day")
    first, second = data["periods"]
    assert (first["from"], first["to"], second["to"]) == ("2026-08-31", "2026-09-01",
                                                         "2026-09-02")
    assert first["chain"]["issued"] == 600  # 15:59 UTC is 23:59 in Shanghai
    assert second["chain"]["issued"] == 50  # 16:00 UTC is the next day there
    assert second["stores"]["S001"]["liability_points"] == 250 + 100 + 600 + 50


def test_liability_is_the_sum_of_balances_at_each_period_end(
    chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str],
) -> None:
    db, chain = chain_db
    for by, start, end in (("week", "2026-08-27", "2026-09-15"),
                           ("month", "2025-11-01", "2026-11-01")):
        data = run(capsys, "points", "--db", db, "--from", start, "--to", end, "--by", by)
        for row in data["periods"]:
            end_us = to_micros(datetime.fromisoformat(f"{row['to']}T00:00:00+08:00"))
            assert row["chain"]["liability_points"] == chain.liability_before(end_us), row
            assert row["chain"]["liability_fen"] == row["chain"]["liability_points"]
            assert sum(store["liability_points"] for store in row["stores"].values()) == \
                row["chain"]["liability_points"]
    weeks = run(capsys, "points", "--db", db, "--from", "2026-08-27", "--to", "2026-09-15",
                "--by", "week")["periods"]
    # Weeks start on Monday, the first and last clipped to the period.
    assert [(row["from"], row["to"]) for row in weeks] == [
        ("2026-08-27", "2026-08-31"), ("2026-08-31", "2026-09-07"), ("2026-09-07", "2026-09-14"),
        ("2026-09-14", "2026-09-15")]
    assert weeks[0]["chain"]["issued"] == 0  # A's registration on 20 August is before it
    assert weeks[1]["chain"]["issued"] == 650
    redeemed = weeks[2]
    assert (redeemed["chain"]["redeemed"], redeemed["chain"]["issued"]) == (500, 45)
    assert redeemed["stores"]["S002"]["redeemed"] == 500


def test_a_store_alone(chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = chain_db
    data = run(capsys, "points", "--db", db, "--from", "2026-09-01", "--to", "2026-10-01",
               "--by", "month", "--store", "S002")
    (row,) = data["periods"]
    assert list(row["stores"]) == ["S002"]
    # S002's own entries: B's 50 in December, A's 45 earned, and the 500 it redeemed.
    assert row["stores"]["S002"]["liability_points"] == 50 + 45 - 500
    assert row["chain"]["redeemed"] == 500


def test_expiry_bands(chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = chain_db
    data = run(capsys, "expiring", "--db", db, "--at", "2026-11-01")

    def points(bands: dict) -> list[int]:
        return [bands[f"within_{days}_days"]["points"] for days in (30, 60, 90)]

    assert points(data["stores"]["S001"]) == [150, 150, 250]
    assert points(data["stores"]["S002"]) == [0, 50, 50]
    assert points(data["chain"]) == [150, 200, 300]
    assert data["chain"]["within_90_days"]["fen"] == 300
    # 30 days from midnight of 21 October in Shanghai is 16:00 UTC on 19 November: B's lots
    # expiring at 01:00 and 02:00 UTC on 20 November fall in the 60-day band.
    later = run(capsys, "expiring", "--db", db, "--at", "2026-10-21", "--store", "S001")
    assert list(later["stores"]) == ["S001"]
    assert points(later["stores"]["S001"]) == [0, 150, 150]


def test_settlement_matrix(chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str]
                           ) -> None:
    db, _ = chain_db
    data = run(capsys, "settlement", "--db", db, "--from", "2026-09-01", "--to", "2026-10-01")
    assert data["matrix"] == {"S001": {"S002": {"points": 500, "fen": 500}}}
    assert data["net"] == {"S001": {"points": -500, "fen": -500},
                           "S002": {"points": 500, "fen": 500}}
    before = run(capsys, "settlement", "--db", db, "--from", "2026-08-01", "--to", "2026-09-11")
    assert (before["matrix"], before["net"]) == ({}, {})  # 02:00 UTC on 11 September: after
    assert main(["report", "settlement", "--db", db, "--rules", str(RULES), "--from",
                 "2026-09-01", "--to", "2026-10-01"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("跨店结算 settlement 2026-09-01 .. 2026-10-01 (Asia/Shanghai)")
    assert "  S001 -> S002: 500 (500)" in text
    assert "  S002: 500 (500)" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["points", "--from", "2026-09-01", "--to", "2026-10-01", "--by", "year"],
     "one of day, week, month"),
    (["points", "--from", "2026-10-01", "--to", "2026-09-01", "--by", "day"],
     "must be before --to"),
    (["settlement", "--from", "2026-09-01", "--to", "1 Oct"], "a date YYYY-MM-DD"),
    (["expiring", "--at", "2026-13-01"], "--at: a date YYYY-MM-DD"),
    (["expiring", "--store", "S001\x1b[2J"], "a store code, printable"),
])
def test_bad_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              argv: list[str], message: str) -> None:
    db = tmp_path / "hq.db"
    view, *rest = argv
    assert main(["report", view, "--db", str(db), "--rules", str(RULES), *rest]) == 2
    assert message in capsys.readouterr().err
    assert not db.exists()  # refused before opening (so making) a database


def test_the_text_output_is_chinese_first(
    chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str],
) -> None:
    db, _ = chain_db
    assert main(["report", "points", "--db", db, "--rules", str(RULES), "--from", "2026-08-31",
                 "--to", "2026-09-07", "--by", "week"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "积分流水 points 2026-08-31 .. 2026-09-07 (Asia/Shanghai), 按 by week"
    assert lines[1].split()[4:7] == ["发放", "兑换", "过期"]
    assert lines[-1].split()[-8:] == ["650", "0", "0", "0", "0", "0", "1050", "1050"]
    assert main(["report", "expiring", "--db", db, "--rules", str(RULES), "--at",
                 "2026-11-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split() == ["全部", "all", "30", "天内", "days", "150", "(150),", "60",
                                 "天内", "days", "200", "(200),", "90", "天内", "days", "300",
                                 "(300)"]


def build_restored(chain: Recorded) -> None:
    """A redeems 500 points of S001's lots at S002 on 11 September; S002 refunds that sale on
    3 October, which restores the 500 points to the lots they came from (and reverses the 45
    points the sale earned at S002)."""
    chain.register("S001", A, at(8, 20, 2))
    chain.sell("S001", A, at(8, 31, 2), line(RICE, 12))
    sale = chain.redeem("S002", A, at(9, 11, 2), 500)
    chain.refund("S002", sale, at(10, 3, 2))


@pytest.fixture(params=["sqlite", "postgresql"])
def restored_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield built_chain(request, tmp_path, Recorded, build_restored)[0]


def test_a_restore_settles_back_where_the_redemption_settled(
    restored_db: str, capsys: pytest.CaptureFixture[str],
) -> None:
    """A restore is a negative redemption in the matrix: in the period of the refund, the lot's
    store (S001) is owed back by the store that refunded (S002); over both periods they cancel."""
    def settle(start: str, end: str) -> dict:
        return run(capsys, "settlement", "--db", restored_db, "--from", start, "--to", end)

    september = settle("2026-09-01", "2026-10-01")
    assert september["matrix"] == {"S001": {"S002": {"points": 500, "fen": 500}}}
    october = settle("2026-10-01", "2026-11-01")
    assert october["matrix"] == {"S001": {"S002": {"points": -500, "fen": -500}}}
    assert october["net"] == {"S001": {"points": 500, "fen": 500},
                              "S002": {"points": -500, "fen": -500}}
    both = settle("2026-09-01", "2026-11-01")
    assert (both["matrix"], both["net"]) == ({}, {})
    flow = run(capsys, "points", "--db", restored_db, "--from", "2026-10-01", "--to",
               "2026-11-01", "--by", "month")["periods"][0]
    assert (flow["stores"]["S002"]["restored"], flow["stores"]["S002"]["reversed"]) == (500, 45)
