"""Every lint rule on hand-made pairs: the example rules in force, one change in the candidate."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from terminal.hq.rules_studio.lint import Finding, lint
from terminal.hq.rules_studio.validate import validate
from terminal.loyalty.rules import Rules
from tests.rules_studio.edits import BASE, edited

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
NEW_PROMOTION = """
[[earn.promotion]]
name = "Double 12"
multiplier = 2.0
from = 2026-12-12T00:00:00+08:00
to = 2026-12-13T00:00:00+08:00
"""


def rules(text: str) -> Rules:
    result = validate(text)
    assert result.rules is not None, result.problems
    return result.rules


def findings(*pairs: tuple[str, str], extra: str = "") -> list[Finding]:
    return lint(rules(BASE), rules(edited(*pairs) + extra), NOW)


def codes(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.key) for f in found]


def test_the_rules_in_force_against_themselves_warn_of_nothing() -> None:
    assert lint(rules(BASE), rules(BASE), NOW) == []


def test_an_earn_rate_more_than_doubled() -> None:
    found = findings(("points_per_yuan = 1 ", "points_per_yuan = 3 "))
    assert codes(found) == [("earn_rate_up", "earn.points_per_yuan")]
    assert "1 to 3 (3x)" in found[0].en and "3x" in found[0].zh


def test_an_earn_rate_exactly_doubled_is_allowed() -> None:
    assert findings(("points_per_yuan = 1 ", "points_per_yuan = 2 ")) == []


@pytest.mark.parametrize(("old", "new", "key"), [
    ("multiplier = 2.0\n\n[[earn.category]]", "multiplier = 4.5\n\n[[earn.category]]",
     "earn.category[fresh].multiplier"),
    ("earn_multiplier = 1.2", "earn_multiplier = 2.5", "tiers.level[silver].earn_multiplier"),
    ("multiplier = 1.5\nweekdays", "multiplier = 3.5\nweekdays",
     "earn.promotion[Wednesday member day].multiplier"),
    ('multiplier = 2.0\nwindow = "day"', 'multiplier = 5\nwindow = "day"',
     "earn.birthday.multiplier"),
])
def test_a_multiplier_more_than_doubled(old: str, new: str, key: str) -> None:
    assert codes(findings((old, new))) == [("multiplier_up", key)]


def test_a_new_category_multiplier_is_measured_against_one() -> None:
    extra = '\n[[earn.category]]\ncategory = "drinks"\nmultiplier = 2.5\n'
    found = lint(rules(BASE), rules(BASE.replace("[[earn.sku]]", extra + "\n[[earn.sku]]")), NOW)
    assert codes(found) == [("multiplier_up", "earn.category[drinks].multiplier")]


def test_redemption_worth_more_per_point_revalues_every_balance() -> None:
    found = findings(("points_per_yuan = 100 ", "points_per_yuan = 50 "))
    assert codes(found) == [("redeem_value_up", "redeem.points_per_yuan"),
                            ("balances_worth_more", "redeem.points_per_yuan")]
    assert "100% more" in found[1].en and "1 fen -> 2 fen" in found[1].en


def test_goods_cheaper_in_points() -> None:
    found = findings(("points = 3000", "points = 1000"))
    assert codes(found) == [("redeem_value_up", "redeem.goods[GIFT-UMBRELLA].points")]


def test_redemption_worth_less_is_no_warning() -> None:
    assert findings(("points_per_yuan = 100 ", "points_per_yuan = 200 ")) == []


END_OF_NEXT_YEAR = ('policy = "months_after_earn"', 'policy = "end_of_next_year"')
NEVER = ('policy = "months_after_earn"', 'policy = "never"')


@pytest.mark.parametrize(("in_force", "candidate", "key"), [
    ((), (("\nmonths = 12 ", "\nmonths = 6 "),), "expiry.months"),
    # a lot earned on 1 January lived 24 months: 12 after it is earned is shorter for it
    ((END_OF_NEXT_YEAR,), (), "expiry.policy"),
    ((NEVER,), (("\nmonths = 12 ", "\nmonths = 600 "),), "expiry.policy"),
    ((), (END_OF_NEXT_YEAR, ("\nmonths = 12 ", "\nmonths = 30 ")), None),
])
def test_expiry_shortened(in_force: tuple[tuple[str, str], ...],
                          candidate: tuple[tuple[str, str], ...], key: str | None) -> None:
    found = lint(rules(edited(*in_force)), rules(edited(*candidate)), NOW)
    assert codes(found) == ([("expiry_shortened", key)] if key else [])


def test_expiry_lengthened_is_no_warning() -> None:
    assert findings(("\nmonths = 12 ", "\nmonths = 18 ")) == []
    assert findings(('policy = "months_after_earn"', 'policy = "never"')) == []


def test_a_tier_threshold_lowered() -> None:
    found = findings(("qualify_spend_fen = 500000", "qualify_spend_fen = 300000"))
    assert codes(found) == [("tier_threshold_lowered", "tiers.level[gold].qualify_spend_fen")]
    assert "3000.00 yuan instead of 5000.00" in found[0].en


@pytest.mark.parametrize(("old", "key"), [
    ("per_sale = 5000", "earn.caps.per_sale"),
    ("per_member_per_day = 8000", "earn.caps.per_member_per_day"),
    ("per_member_per_day = 20000", "redeem.per_member_per_day"),
])
def test_a_cap_removed(old: str, key: str) -> None:
    assert codes(findings((old, "# removed"))) == [("cap_removed", key)]


def test_a_cap_raised_is_not_removed() -> None:
    assert findings(("per_sale = 5000", "per_sale = 6000")) == []


def test_a_promotion_window_in_the_past() -> None:
    found = findings(("to = 2026-10-08T00:00:00+08:00", "to = 2026-10-09T00:00:00+08:00"))
    assert ("promotion_past", "earn.promotion[National Day double points].to") in codes(found)


def test_a_new_promotion_overlapping_another() -> None:
    # 12 December 2026 is a Saturday: the Wednesday member day does not meet it...
    assert findings(extra=NEW_PROMOTION) == []
    # ...but a week-long one does, whatever its order in the file; National Day (in force,
    # over) is no overlap any more
    found = findings(extra=NEW_PROMOTION.replace("2026-12-13", "2026-12-19"))
    assert codes(found) == [("promotion_overlap", "earn.promotion[Double 12]")]
    assert "Wednesday member day" in found[0].en


def test_an_unchanged_promotion_is_not_judged_again() -> None:
    # National Day is in the past and overlaps a Wednesday, but it is already in force.
    assert findings(("min_points = 500", "min_points = 600")) == []
