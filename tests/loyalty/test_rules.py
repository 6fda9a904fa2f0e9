"""The rules file: the example parses exactly; bad values are refused naming the key."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import Rules, load_rules


def test_example_rules_parse_exactly(examples: Path) -> None:
    rules = load_rules(examples / "rules.toml")
    assert rules.zone.key == "Asia/Shanghai"
    assert rules.earn.categories == {"fresh": Fraction(2), "household": Fraction(3, 2)}
    assert rules.tier("silver").earn_multiplier == Fraction(6, 5)  # 1.2 exactly, not binary
    assert [t.name for t in rules.tiers] == ["member", "silver", "gold", "diamond"]
    assert rules.earn.promotions[1].weekdays == (2,)
    assert rules.redeem.goods["GIFT-UMBRELLA"].per_member_limit == 2
    assert rules.unknown_keys == ()


def test_added_keys_are_accepted_and_listed(make_rules: Callable[..., Rules]) -> None:
    rules = make_rules(lambda d: d["earn"].update(new_thing=1))
    assert rules.unknown_keys == ("earn.new_thing",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["earn"].update(rounding="bankers"), "earn.rounding: 'bankers' is not one of"),
        (lambda d: d["earn"].update(points_per_yuan="x"), "earn.points_per_yuan: 'x' is not"),
        (lambda d: d["program"].update(timezone="Mars/Olympus"), "program.timezone: unknown zone"),
        (lambda d: d["redeem"].update(min_points=-5), "redeem.min_points: -5 is outside"),
        (lambda d: d["redeem"].pop("points_per_yuan"), "redeem.points_per_yuan: missing"),
        (lambda d: d["tiers"]["level"][0].update(qualify_spend_fen=5),
         "the lowest tier must qualify at 0"),
        (lambda d: d["earn"]["promotion"][1].update(weekdays=["wednesday"]),
         "earn.promotion[1].weekdays: 'wednesday'"),
        (lambda d: d["earn"]["promotion"][0].update(to="2026-09-01T00:00:00+08:00"),
         "earn.promotion[0].to: ends at or before it starts"),
        (lambda d: d["earn"]["promotion"][0].update(**{"from": "2026-10-01T00:00:00"}),
         "carries no zone"),
        (lambda d: d["expiry"].update(policy="sometimes"), "expiry.policy"),
        (lambda d: d["refund"].update(reverse_earned="yes"), "refund.reverse_earned"),
    ],
)
def test_bad_rules_name_the_key(
    make_rules: Callable[..., Rules], change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_rules(change)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[program\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"rules\.toml: not valid TOML"):
        load_rules(bad)
