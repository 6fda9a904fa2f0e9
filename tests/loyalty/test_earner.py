"""The backtest's :class:`Earner` gives exactly :func:`compute_earning`'s points: random baskets,
tiers, times (trusted, untrusted with and without a floor), birthdays (a day's, a week's and a
month's window), roundings, bases, odd multipliers, promotions and caps; a new Earner and one
kept across the examples (what it remembers of birthdays must never change a figure)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.loyalty.clock import Moment
from terminal.loyalty.earning import Earner, compute_earning
from terminal.loyalty.pricing import Line, price
from terminal.loyalty.rules import Rules
from tests.support.shared import EXAMPLES

START = datetime(2026, 9, 25, tzinfo=UTC)


def rules_of(rounding: str, basis: str, rate: str, fresh: str, caps: bool,
             window: str = "week") -> Rules:
    data = tomllib.loads((EXAMPLES / "rules.toml").read_text(encoding="utf-8"))
    earn = data["earn"]
    earn["rounding"], earn["basis"], earn["points_per_yuan"] = rounding, basis, float(rate)
    earn["category"][0]["multiplier"] = float(fresh)
    earn["birthday"]["window"] = window
    if not caps:
        del earn["caps"]
    return Rules.from_mapping(data)


RULES = {(rounding, basis, rate, fresh, caps, window):
         rules_of(rounding, basis, rate, fresh, caps, window)
         for rounding in ("floor", "round", "ceil") for basis in ("paid", "list")
         for rate in ("1", "0.7", "2.5") for fresh in ("2.0", "1.3") for caps in (True, False)
         for window in ("day", "week", "month")}
KEPT = {key: Earner(rules) for key, rules in RULES.items()}

lines = st.lists(st.builds(
    Line, sku=st.sampled_from(["A", "B", "6901234567892"]), qty=st.integers(1, 30),
    price_fen=st.integers(0, 90_000), name=st.just(""),
    category=st.sampled_from(["", "fresh", "household", "tobacco", "drinks"])),
    min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(sorted(RULES)), basket=lines, tier=st.integers(0, 3),
       deduction=st.integers(0, 5_000), hours=st.integers(0, 24 * 30),
       trusted=st.booleans(), floor=st.one_of(st.none(), st.integers(-48, 48)),
       birthday=st.one_of(st.none(), st.integers(-40, 40)),
       earned_today=st.integers(0, 9_000))
def test_the_earner_gives_compute_earnings_points(
        key: tuple[str, str, str, str, bool, str], basket: list[Line], tier: int, deduction: int,
        hours: int, trusted: bool, floor: int | None, birthday: int | None,
        earned_today: int) -> None:
    rules = RULES[key]
    level = rules.tiers[tier]
    list_fen = sum(line.list_fen for line in basket)
    due = list_fen - list_fen * level.discount_percent // 100
    pricing = price(basket, level.discount_percent, min(deduction, due))
    at = START + timedelta(hours=hours)
    moment = Moment(at, trusted, None if floor is None else at + timedelta(hours=floor))
    born = None if birthday is None else (at + timedelta(days=birthday)).date().replace(year=1990)
    expected = compute_earning(rules, pricing, level, moment, born, earned_today).points
    assert Earner(rules).points(pricing, level, moment, born, earned_today) == expected
    assert KEPT[key].points(pricing, level, moment, born, earned_today) == expected


def test_the_earners_birthdays_are_birthday_applies_for_every_day_of_the_year() -> None:
    """Every birthday of a leap year (29 February too) on every 5th day of two years, twice
    over (the second time from what the Earner remembers), under each window."""
    from datetime import date

    from terminal.loyalty.earning import birthday_applies

    for window in ("day", "week", "month"):
        rules = rules_of("floor", "paid", "1", "2.0", True, window)
        earner = Earner(rules)
        births = [date(1992, 1, 1) + timedelta(days=n) for n in range(366)]
        moments = [Moment(datetime(2027, 1, 1, 3, tzinfo=UTC) + timedelta(days=n), True)
                   for n in range(0, 730, 5)]
        for _ in range(2):
            for born in births:
                for moment in moments:
                    assert earner._birthday(born, moment, window) \
                        == birthday_applies(born, moment, rules), (window, born, moment.at)
