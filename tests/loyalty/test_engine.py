"""The pure engine: money, earning, redemption, refunds and lot arithmetic, with no database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from fractions import Fraction

import pytest

from terminal.core.pan import is_payment_pan, luhn_valid
from terminal.loyalty import ledger
from terminal.loyalty.calendar import add_months, birthday_in_window, lot_expiry
from terminal.loyalty.cards import check_card
from terminal.loyalty.clock import Moment
from terminal.loyalty.earning import compute_earning
from terminal.loyalty.errors import InvalidInput, PaymentCardRefused, RedeemRefused
from terminal.loyalty.money import largest_remainder, round_points, yuan
from terminal.loyalty.pricing import Line, check_lines, price
from terminal.loyalty.redemption import (
    RedeemContext,
    check_deduction,
    check_exchange,
    max_redeemable,
)
from terminal.loyalty.refunds import SoldLine, plan_refund_lines, proportional_so_far
from terminal.loyalty.rules import Rules

from .conftest import SH, at


def test_largest_remainder_ties_go_to_the_earlier_line() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(100, [2500, 4000, 2500]) == [28, 44, 28]
    assert sum(largest_remainder(7, [3, 5, 11, 13])) == 7
    with pytest.raises(ValueError):
        largest_remainder(1, [0, 0])


def test_rounding_modes_and_yuan() -> None:
    assert round_points(Fraction(75, 2), "floor") == 37
    assert round_points(Fraction(75, 2), "round") == 38
    assert round_points(Fraction(74, 2), "ceil") == 37
    assert round_points(Fraction(741, 20), "ceil") == 38
    assert yuan(1250) == "12.50" and yuan(-5) == "-0.05"


def _earn(rules: Rules, lines: list[Line], when: datetime, tier: str = "member",
          birthday: date | None = None, today: int = 0, deduction: int = 0,
          trusted: bool = True, floor: datetime | None = None) -> tuple[int, str]:
    level = rules.tier(tier)
    pricing = price(lines, level.discount_percent, deduction)
    result = compute_earning(rules, pricing, level, Moment(when, trusted, floor), birthday, today)
    return result.points, "; ".join(result.why)


FRESH = Line("6900000000011", 1, 1250, category="fresh")


def test_weekday_promotion_and_category_multiplier(rules: Rules) -> None:
    assert _earn(rules, [FRESH], at("2026-03-11 09:00"))[0] == 37  # Wednesday x1.5
    assert _earn(rules, [FRESH], at("2026-03-12 09:00"))[0] == 25  # Thursday


def test_highest_promotion_wins_and_they_do_not_stack(rules: Rules) -> None:
    # 2026-10-07 is a Wednesday inside National Day: x2 wins over x1.5, not x3.
    points, why = _earn(rules, [FRESH], at("2026-10-07 09:00"))
    assert points == 50 and "National Day" in why
    assert _earn(rules, [FRESH], at("2026-10-08 00:00"))[0] == 25  # `to` is exclusive: Thursday


def test_tier_multiplier_birthday_and_single_rounding(rules: Rules) -> None:
    line = Line("A", 1, 1010, category="fresh")  # 10.10 yuan x2 = 20.2
    # silver: 2% off 1010 = 20 fen -> paid 990 -> 19.8 x1.2 = 23.76 -> birthday x2 = 47.52 -> 47
    points, _ = _earn(rules, [line], at("2026-08-15 09:00"), tier="silver",
                      birthday=date(1990, 8, 15))
    assert points == 47
    assert _earn(rules, [line], at("2026-08-16 09:00"), tier="silver",
                 birthday=date(1990, 8, 15))[0] == 23


def test_basis_list_ignores_discount_and_deduction(make_rules: Callable[..., Rules]) -> None:
    rules = make_rules(lambda d: d["earn"].update(basis="list"))
    points, _ = _earn(rules, [Line("A", 1, 10000)], at("2026-03-12 09:00"), tier="gold",
                      deduction=2000)
    assert points == 150  # 100 yuan x1.5 gold, not the 75 yuan paid


def test_excluded_min_sale_fixed_points_and_caps(rules: Rules) -> None:
    tobacco = Line("T", 1, 2500, category="tobacco")
    assert _earn(rules, [tobacco], at("2026-03-12 09:00"))[0] == 0
    assert _earn(rules, [Line("A", 1, 99)], at("2026-03-12 09:00"))[0] == 0  # below min_sale_fen
    fixed = Line("6901234567892", 2, 500)  # 10 yuan = 10 points, + 2 x 50 fixed, on a Wednesday
    assert _earn(rules, [fixed], at("2026-03-11 09:00"))[0] == 115  # 10 x1.5, fixed not multiplied
    big = Line("B", 1, 1_000_000)  # 10,000 yuan
    points, why = _earn(rules, [big], at("2026-03-12 09:00"))
    assert points == 5000 and "per_sale" in why
    assert _earn(rules, [big], at("2026-03-12 09:00"), today=7000)[0] == 1000  # day cap 8000


def test_untrusted_clock_applies_no_window_it_cannot_prove(rules: Rules) -> None:
    wed = at("2026-03-11 09:00")
    assert _earn(rules, [FRESH], wed, trusted=False)[0] == 25  # no floor: no promotion
    assert _earn(rules, [FRESH], wed, trusted=False, floor=at("2026-03-11 08:00"))[0] == 37
    assert _earn(rules, [FRESH], wed, trusted=False, floor=at("2026-03-10 08:00"))[0] == 25


def test_pricing_shares_discount_and_deduction_by_largest_remainder() -> None:
    lines = [Line("A", 1, 333), Line("B", 1, 333), Line("C", 1, 334)]
    pricing = price(lines, 5, 100)  # 5% of 1000 = 50, + 100 deduction = 150 to share
    assert pricing.discount_fen == 50 and pricing.paid_fen == 850
    assert [p.paid_fen for p in pricing.lines] == [283, 283, 284]
    assert sum(p.paid_fen for p in pricing.lines) == pricing.paid_fen


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "no lines"),
        ([Line("A", 0, 100)], "quantity 0"),
        ([Line("A", 1, -1)], "price -1 fen"),
        ([Line("", 1, 1)], "no SKU"),
        ([Line("A", 1, 10**9)], "price 1000000000 fen"),
    ],
)
def test_impossible_baskets_are_refused(lines: list[Line], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_lines(lines)


CTX = RedeemContext(balance=10_000, redeemed_today=0, offline_redeemed_today=0, online=True)


@pytest.mark.parametrize(
    ("points", "ctx", "due", "message"),
    [
        (200, CTX, 10_000, r"200 points is below redeem.min_points \(500\)"),
        (550, CTX, 10_000, "not a multiple of redeem.step_points"),
        (600, CTX, 1_000, "more than redeem.max_percent_of_sale"),
        (600, RedeemContext(550, 0, 0, True), 10_000, "more than the balance"),
        (600, RedeemContext(10_000, 19_500, 0, True), 10_000, "redeem.per_member_per_day"),
        (600, RedeemContext(10_000, 0, 1_500, False), 10_000, "offline_allowance"),
    ],
)
def test_redemption_refusals(rules: Rules, points: int, ctx: RedeemContext, due: int,
                             message: str) -> None:
    with pytest.raises(RedeemRefused, match=message):
        check_deduction(rules, points, ctx, due)


def test_deduction_and_largest_allowed(rules: Rules) -> None:
    assert check_deduction(rules, 500, CTX, 10_000) == 500
    assert max_redeemable(rules, CTX, 1_650) == 800  # half of 16.50 yuan = 825 fen -> 800 pts
    assert max_redeemable(rules, RedeemContext(450, 0, 0, True), 10_000) == 0
    assert max_redeemable(rules, RedeemContext(9_000, 0, 0, False), 100_000) == 2_000


def test_goods_exchange_limits(rules: Rules) -> None:
    goods, points = check_exchange(rules, "GIFT-UMBRELLA", 1, CTX, 0)
    assert points == 3000 and goods.name.startswith("折叠伞")
    with pytest.raises(RedeemRefused, match="per_sale_limit"):
        check_exchange(rules, "GIFT-UMBRELLA", 2, CTX, 0)
    with pytest.raises(RedeemRefused, match="per_member_limit"):
        check_exchange(rules, "GIFT-UMBRELLA", 1, CTX, 2)
    with pytest.raises(RedeemRefused, match=r"not in redeem\.goods"):
        check_exchange(rules, "NOPE", 1, CTX, 0)


def test_refund_money_per_unit_and_last_units() -> None:
    line = SoldLine(1, "A", 3, 1000)
    first = plan_refund_lines("S", [line], [("A", 1)])
    assert first[0].fen == 333
    after = SoldLine(1, "A", 3, 1000, refunded_qty=1, refunded_fen=333)
    assert plan_refund_lines("S", [after], [("A", 2)])[0].fen == 667  # what is left


def test_refund_proportion_adds_up_over_parts() -> None:
    e, p = 110, 9000
    parts = [1000, 2500, 5500]
    taken, refunded = [], 0
    for part in parts:
        refunded += part
        taken.append(proportional_so_far(e, p, refunded, refunded == p))
    assert taken[-1] == e
    assert proportional_so_far(110, 9000, 4000, False) == 49


def test_lots_debit_soonest_expiring_first_and_debt() -> None:
    early, late = at("2027-01-01 00:00"), at("2027-06-01 00:00")
    account = ledger.Account()
    account.credit(ledger.Entry(kind="earn", points=100, id="late"), at("2026-06-01 00:00"), late)
    account.credit(ledger.Entry(kind="earn", points=50, id="early"), at("2026-01-01 00:00"),
                   early)
    entry = account.debit(ledger.Entry(kind="redeem", points=-70), allow_debt=False)
    assert entry.allocations == [("early", -50), ("late", -20)]
    reverse = account.debit(ledger.Entry(kind="reverse", points=-100), allow_debt=True)
    assert reverse.debt_delta == 20 and account.balance == -20
    earn = account.credit(ledger.Entry(kind="earn", points=30), at("2026-07-01 00:00"), late)
    assert earn.debt_delta == -20 and earn.new_lot is not None and earn.new_lot.points == 10
    assert account.balance == 10


def test_expiry_dates_for_both_policies(rules: Rules) -> None:
    assert lot_expiry(at("2026-03-04 10:00"), rules.expiry, SH) == at("2027-03-04 10:00")
    eony = type(rules.expiry)("end_of_next_year", 12, 30)
    assert lot_expiry(at("2026-03-04 10:00"), eony, SH) == at("2028-01-01 00:00")
    assert add_months(at("2026-01-31 10:00"), 1) == at("2026-02-28 10:00")


def test_birthday_windows() -> None:
    born = date(1990, 8, 15)
    assert birthday_in_window(born, date(2026, 8, 15), "day")
    assert not birthday_in_window(born, date(2026, 8, 16), "day")
    assert birthday_in_window(born, date(2026, 8, 18), "week")
    assert not birthday_in_window(born, date(2026, 8, 19), "week")
    assert birthday_in_window(born, date(2026, 8, 1), "month")
    assert birthday_in_window(date(2000, 2, 29), date(2027, 2, 28), "day")


def test_payment_cards_are_refused_without_echo() -> None:
    assert luhn_valid("4111111111111111") and is_payment_pan("4111111111111111")
    assert is_payment_pan("8100000000000002")  # UnionPay's 81 series
    assert not is_payment_pan("8000123456")
    with pytest.raises(PaymentCardRefused) as refused:
        check_card("4111111111111111")
    assert "4111" not in str(refused.value)
    with pytest.raises(InvalidInput, match="4 to 32 letters or digits"):
        check_card("80 00")
