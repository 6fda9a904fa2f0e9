"""The tills' X and Z reports reach HQ (the ``day_report`` event written with the report) and
`posterm-hq report z` shows each terminal's day and the chain's, redemptions included; a second
Z for one terminal's day and a report sent twice are refused. Real tills, HQ's chain ledger
applying their events, on SQLite and PostgreSQL (times UTC; the zone Asia/Shanghai)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from terminal.hq.cli import main
from terminal.loyalty.store import eod
from terminal.loyalty.store.models import Outbox
from terminal.protocol.messages import Event
from tests.hq.test_analytics import RICE, RULES, at, built_chain, line
from tests.hq.test_points_reports import Recorded

A, B = "8000000021", "8000000022"
DAY = date(2026, 11, 2)


def print_report(chain: Recorded, store: str, kind: str, moment, day: date = DAY) -> None:
    till = chain.tills[store]
    till.call(eod.write_report, till.store, kind, day, moment, "店长")
    chain._to_hq(till)


def build(chain: Recorded) -> None:
    chain.register("S001", A, at(11, 1, 2))
    chain.sell("S001", A, at(11, 1, 3), line(RICE, 10))  # 500 points and the 100 for joining
    chain.register("S002", B, at(11, 1, 4))
    chain.sell("S001", A, at(11, 2, 1), line(RICE, 1))  # 9:00 on 2 November in Shanghai
    chain.redeem("S001", A, at(11, 2, 2), 500)  # 50.00 yuan of rice, 5.00 of it paid by points
    print_report(chain, "S001", "X", at(11, 2, 3))
    chain.sell("S002", B, at(11, 2, 4), line(RICE, 2))
    print_report(chain, "S002", "X", at(11, 2, 5))
    chain.sell("S001", A, at(11, 2, 6), line(RICE, 1))
    print_report(chain, "S001", "Z", at(11, 2, 14))  # 22:00: S001/T01 closes its day


@pytest.fixture(params=["sqlite", "postgresql"])
def chain_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Recorded]]:
    yield built_chain(request, tmp_path, Recorded, build)


def report_z(capsys: pytest.CaptureFixture[str], db: str, *extra: str) -> dict:
    assert main(["report", "z", "--db", db, "--rules", str(RULES), "--from", "2026-11-01",
                 "--to", "2026-11-04", *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_x_and_z_reports_reach_hq_with_the_redemptions(
    chain_db: tuple[str, Recorded], capsys: pytest.CaptureFixture[str],
) -> None:
    db, _ = chain_db
    data = report_z(capsys, db)
    [day] = data["days"]  # no till printed a report on 1 or 3 November
    assert day["day"] == "2026-11-02"
    s001, s002 = day["terminals"]
    # S001's Z closes its day: three sales, one paid 5.00 yuan with 500 points.
    assert (s001["store"], s001["closed"], s001["reports"]) == ("S001", True, 2)
    assert (s001["sales_count"], s001["paid_fen"], s001["deduction_fen"]) == (3, 14500, 500)
    assert s001["hq_sales"] == 3  # HQ applied as many of S001/T01's sales that day
    assert s001["operator"] == "店长"
    # S002 has printed an X only: its latest reading stands for the day.
    assert (s002["store"], s002["closed"], s002["sales_count"], s002["paid_fen"]) == (
        "S002", False, 1, 10000)
    totals = day["totals"]
    assert (totals["sales_count"], totals["paid_fen"], totals["deduction_fen"]) == (
        4, 24500, 500)
    assert totals["points_redeemed"] == s001["points_redeemed"] + s002["points_redeemed"]
    only = report_z(capsys, db, "--store", "S002")
    assert [row["store"] for row in only["days"][0]["terminals"]] == ["S002"]
    assert main(["report", "z", "--db", db, "--rules", str(RULES), "--from", "2026-11-01",
                 "--to", "2026-11-04"]) == 0
    text = capsys.readouterr().out
    assert "日结" in text and "2026-11-02 合计 total: 4 / 24500 / 500" in text


def test_a_second_z_and_a_report_sent_twice_are_refused(tmp_path: Path) -> None:
    chain = Recorded(str(tmp_path / "hq.db"), _tills(tmp_path))
    try:
        chain.register("S001", A, at(11, 1, 2))
        print_report(chain, "S001", "Z", at(11, 2, 14))
        till = chain.tills["S001"]
        [sent] = [Event.from_json(payload) for payload in till.call(
            lambda: [row.payload for row in Outbox.select()])
            if json.loads(payload)["kind"] == "day_report"]
        again = replace(sent, id=str(uuid.uuid4()), seq=sent.seq + 1000)
        second_z = replace(sent, id=str(uuid.uuid4()), seq=sent.seq + 1001,
                           body={**sent.body, "report": str(uuid.uuid4())})
        bad = replace(sent, id=str(uuid.uuid4()), seq=sent.seq + 1002,
                      body={**sent.body, "report": str(uuid.uuid4()), "kind": "Q"})
        outcomes = chain.ledger.thread.call(chain.ledger.apply, [again, second_z, bad])
        assert [outcome.result for outcome in outcomes] == ["refused"] * 3
        assert "collected already" in outcomes[0].detail
        assert "second Z report" in outcomes[1].detail
        assert "body.kind" in outcomes[2].detail
    finally:
        chain.close()


def _tills(tmp_path: Path) -> Path:
    (tmp_path / "tills").mkdir()
    return tmp_path / "tills"
