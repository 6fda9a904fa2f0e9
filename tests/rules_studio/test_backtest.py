"""The backtest's arithmetic against hand-made histories, and its check against the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.hq.cli import main
from terminal.hq.rules_studio.jobs import run_backtest
from terminal.hq.rules_studio.validate import validate
from terminal.loyalty.rules import Rules
from tests.rules_studio.chain import HandChain
from tests.rules_studio.edits import BASE, edited
from tests.support.shared import EXAMPLES

IN_FORCE = validate(BASE).rules
assert IN_FORCE is not None


def rules(*pairs: tuple[str, str]) -> Rules:
    found = validate(edited(*pairs)).rules
    assert found is not None
    return found


TRIPLE_EARN = rules(("points_per_yuan = 1 ", "points_per_yuan = 3 "))
RICH_POINTS = rules(("points_per_yuan = 100 ", "points_per_yuan = 50 "))


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[HandChain]:
    made = HandChain(tmp_path, IN_FORCE)
    yield made
    made.close()


def shop(chain: HandChain) -> None:
    """Wang joins S001 (100 bonus points), buys 200 yuan of fresh food (x2: 400 points) and
    brings it all back, then 50 yuan of drinks at S002 (50 points). 2 November 2026 is a Monday:
    no promotion, no birthday, tier member."""
    chain.register("S001", "wang", "2026-11-01T10:00")
    sale = chain.sale("S001", "wang", "2026-11-02T10:00", [("F1", 1, 20000, "fresh")])
    chain.refund("S001", sale, "2026-11-03T10:00")
    chain.sale("S002", "wang", "2026-11-06T10:00", [("D1", 1, 5000, "drinks")])


def test_the_in_force_replay_is_what_the_ledger_recorded(chain: HandChain) -> None:
    shop(chain)
    result = run_backtest(chain.url, IN_FORCE, IN_FORCE, 30)
    assert result["check"] == {"matches": True, "differences": {}, "recorded": {
        "points_issued": 550, "points_redeemed": 0, "points_reversed": 400,
        "points_restored": 0, "points_adjusted": 0, "liability_end": 150}}
    assert result["candidate"] == result["in_force"]
    assert result["liability_change_fen"] == 0 and result["most_affected"] == []


def test_a_tripled_earn_rate_by_hand(chain: HandChain) -> None:
    shop(chain)
    result = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 30)
    new, old = result["candidate"], result["in_force"]
    # 100 bonus + 200 yuan x2 x3 = 1200 (all reversed) + 50 yuan x3 = 150
    assert (new["points_issued"], new["points_reversed"], new["liability_end"]) == \
        (1450, 1200, 250)
    assert (old["points_issued"], old["points_reversed"], old["liability_end"]) == (550, 400, 150)
    assert new["liability_end_yuan"] == "2.50" and old["liability_end_yuan"] == "1.50"
    assert result["liability_change_fen"] == 100
    # per store: the events' stores; the liability by the member's home
    assert new["stores"]["S001"]["points_issued"] == 1300
    assert new["stores"]["S002"]["points_issued"] == 150
    assert new["stores"]["S001"]["liability_end"] == 250
    assert new["tiers"]["member"]["points_issued"] == 1450
    (wang,) = result["most_affected"]
    assert (wang["balance_in_force"], wang["balance_candidate"], wang["store"]) == \
        (150, 250, "S001")


def test_points_worth_more_lower_what_redeeming_sales_pay_and_earn(chain: HandChain) -> None:
    chain.register("S001", "wang", "2026-11-01T10:00")
    chain.sale("S001", "wang", "2026-11-02T10:00", [("F1", 1, 30000, "fresh")])  # 600
    # 500 points off 100 yuan of drinks on a Thursday: 5 yuan in force (pays 95, earns 95),
    # 10 yuan for the candidate (pays 90, earns 90)
    chain.sale("S001", "wang", "2026-11-05T10:00", [("D1", 1, 10000, "drinks")], redeem=500)
    result = run_backtest(chain.url, IN_FORCE, RICH_POINTS, 30)
    assert result["check"]["matches"]
    new, old = result["candidate"], result["in_force"]
    assert (old["points_issued"], old["points_redeemed"], old["liability_end"]) == (795, 500, 295)
    assert (new["points_issued"], new["points_redeemed"], new["liability_end"]) == (790, 500, 290)
    assert (old["liability_end_fen"], new["liability_end_fen"]) == (295, 580)


def test_a_candidate_cannot_redeem_points_its_members_would_not_have(chain: HandChain) -> None:
    chain.register("S001", "wang", "2026-11-01T10:00")  # 100
    chain.sale("S001", "wang", "2026-11-02T10:00", [("F1", 1, 30000, "fresh")])  # 600
    chain.sale("S001", "wang", "2026-11-05T10:00", [("D1", 1, 10000, "drinks")], redeem=500)
    stingy = rules(("points_per_yuan = 1 ", "points_per_yuan = 0.1 "))
    result = run_backtest(chain.url, IN_FORCE, stingy, 30)
    assert result["check"]["matches"], result["check"]
    old, new = result["in_force"], result["candidate"]
    assert (old["points_redeemed"], old["liability_end"]) == (500, 295)
    # 100 + 60 = 160 points by then: below the 500 the member asked (and the minimum), so the
    # till would have redeemed nothing; the sale pays 100 yuan and earns 10
    assert (new["points_issued"], new["points_redeemed"], new["liability_end"]) == (170, 0, 170)
    assert new["skipped"] == {"redemption reduced by the balance": 1}


def test_a_refund_gives_back_the_points_its_sale_redeemed(chain: HandChain) -> None:
    chain.register("S001", "wang", "2026-11-01T10:00")
    chain.sale("S001", "wang", "2026-11-02T10:00", [("F1", 1, 30000, "fresh")])
    sale = chain.sale("S001", "wang", "2026-11-05T10:00", [("D1", 2, 5000, "drinks")],
                      redeem=500)  # pays 95 yuan, earns 95 points
    chain.refund("S001", sale, "2026-11-06T10:00", [("D1", 1)])
    result = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 30)
    assert result["check"]["matches"], result["check"]
    old, new = result["in_force"], result["candidate"]
    # half the sale back: half its 95 points (48 taken back: 95 - floor(95 * 4750 / 9500)),
    # half its 500 redeemed (250 given back)
    assert (old["points_reversed"], old["points_restored"]) == (48, 250)
    assert (new["points_reversed"], new["points_restored"]) == (143, 250)  # of 285


def test_events_before_the_window_are_its_opening_state(chain: HandChain) -> None:
    shop(chain)
    chain.sale("S001", "wang", "2026-11-20T10:00", [("F1", 1, 10000, "fresh")])  # 200
    # the last 5 days hold only the last sale: the 150 points before it are the opening state
    result = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 5)
    assert result["window"]["events"] == 1 and result["check"]["matches"]
    assert result["in_force"]["points_issued"] == 200
    assert result["candidate"]["points_issued"] == 600
    assert result["candidate"]["liability_end"] == 750


def test_a_tier_threshold_lowered_changes_tiers_and_earnings(chain: HandChain) -> None:
    chain.register("S001", "wang", "2026-11-01T10:00")
    chain.register("S001", "li", "2026-11-01T11:00")
    chain.sale("S001", "wang", "2026-11-02T10:00", [("D1", 1, 60000, "drinks")])  # 600
    chain.sale("S001", "wang", "2026-11-03T10:00", [("D1", 1, 10000, "drinks")])
    cheap_silver = rules(("qualify_spend_fen = 100000", "qualify_spend_fen = 50000"))
    result = run_backtest(chain.url, IN_FORCE, cheap_silver, 30)
    assert result["tier_changes"] == 1
    assert result["candidate"]["members_by_tier"]["silver"] == 1
    assert result["in_force"]["members_by_tier"]["silver"] == 0
    # silver from the second sale: 100 yuan less 2% = 98 yuan, x1.2 = 117.6 -> 117
    assert result["candidate"]["points_issued"] == 200 + 600 + 117
    assert [row["member"] for row in result["most_affected"]] == \
        [result["most_affected"][0]["member"]]


def test_the_same_history_and_rules_give_the_same_numbers(chain: HandChain) -> None:
    shop(chain)
    first = run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 30)
    assert run_backtest(chain.url, IN_FORCE, TRIPLE_EARN, 30) == first


def test_the_command_prints_both_sides_and_the_check(
        chain: HandChain, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop(chain)
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(edited(("points_per_yuan = 1 ", "points_per_yuan = 3 ")), "utf-8")
    in_force = tmp_path / "in-force.toml"
    in_force.write_text(BASE, "utf-8")
    argv = ["rules", "backtest", str(candidate), "--db", chain.url, "--days", "30",
            "--in-force", str(in_force)]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["candidate"]["points_issued"], result["in_force"]["points_issued"]) == \
        (1450, 550)
    assert result["check"]["matches"] is True
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "check: the in-force replay gives what the ledger recorded"


@pytest.mark.parametrize(("extra", "message"), [
    (["--days", "0"], "at least one day"),
    (["--days", "3", "--until", "2026-11-30T00:00:00"], "carries no zone"),
])
def test_the_command_refuses_bad_options(chain: HandChain, extra: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "backtest", str(EXAMPLES / "rules.toml"), "--db", chain.url,
                 "--days", "30", *extra]) == 1
    assert message in capsys.readouterr().err
