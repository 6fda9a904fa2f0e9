"""The six places rules.toml's comments settle (issue 15), each on a minimal case; the table in
docs/loyalty.md names these tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.bundles import BuildError, _jsonable, check_rules
from terminal.loyalty.errors import AdjustRefused, RedeemRefused, RulesError
from terminal.loyalty.operations import SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore

from .conftest import at, register, sell

CARD = "8000000001"


def _balance(store: LedgerStore, when: str) -> int:
    return store.member(CARD, store.moment(at(when))).balance


# -- a lot's points are gone from its expiry instant, swept or not ------------------------------

def test_expired_points_are_gone_from_the_instant_without_a_sweep(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-02 10:00")  # 100 points, expiring 2027-03-02 10:00
    store.adjust(CARD, 5_000, "goodwill", "manager", store.moment(at("2026-03-02 10:00")))
    assert _balance(store, "2027-03-02 09:59") == 5_100
    assert _balance(store, "2027-03-02 10:00") == 0
    at_expiry = store.moment(at("2027-03-02 10:00"))
    with pytest.raises(RedeemRefused, match="more than the balance"):
        store.exchange(CARD, "GIFT-UMBRELLA", 1, at_expiry)
    with pytest.raises(AdjustRefused, match="overdraw"):
        store.adjust(CARD, -100, "correction", "manager", at_expiry)
    with pytest.raises(RedeemRefused, match="more than the balance"):
        sell(store, "S1", [("A", "", 1, 100_000)], when="2027-03-02 10:00", redeem=500)
    quote = store.quote(SaleRequest("S1", [Line("A", 1, 100_000)], card=CARD), at_expiry)
    assert quote.balance == 0 and quote.max_redeem_points == 0
    # The sale itself recorded the expiry before acting: balance = the sum of the entries.
    sell(store, "S2", [("A", "", 1, 1_000)], when="2027-03-02 10:00")
    assert store.check_invariants() == []
    assert store.expire(at_expiry).lots == 0  # nothing left for the sweep


def test_a_refund_never_takes_back_from_an_expired_lot(store: LedgerStore) -> None:
    """Swept or not, the same: the sale's lot has expired, so its points come back from the
    member's other points (here a debt), exactly as after a sweep."""
    register(store, CARD, when="2026-03-02 10:00")
    sell(store, "S1", [("A", "", 1, 10_000)], when="2026-03-02 11:00")  # 100 points
    result = store.refund("S1", None, store.moment(at("2027-03-03 10:00")))
    assert result.points_reversed == 100
    assert result.member is not None and (result.member.balance, result.member.debt) == (-100,
                                                                                          100)
    assert store.check_invariants() == []


# -- a partial give-back returns to the latest-expiring lots first -------------------------------

def test_a_partial_give_back_returns_to_the_latest_expiring_lot_first(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-02 10:00")  # 100, expiring 2027-03-02
    store.adjust(CARD, 400, "early", "manager", store.moment(at("2026-03-02 10:00")))
    store.adjust(CARD, 1_000, "late", "manager", store.moment(at("2026-05-02 10:00")))
    sold = sell(store, "S1", [("A", "", 2, 50_000)], when="2026-05-03 10:00", redeem=1_000)
    assert sold.points_redeemed == 1_000  # 500 from the early lots, 500 from the late one
    back = store.refund("S1", [("A", 1)], store.moment(at("2026-05-04 10:00")))
    assert back.points_restored == 500
    lots = {lot["expires"][:10]: lot["remaining"] for lot in
            store.statement(CARD, store.moment(at("2026-05-04 10:00")))["lots"]
            if lot["points"] in (100, 400, 1_000)}
    assert lots == {"2027-03-02": 0, "2027-05-02": 1_000}


# -- goods exchanges count toward redeem.per_member_per_day ------------------------------------

def test_exchanges_count_toward_the_daily_redemption_cap(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-02 10:00")
    store.adjust(CARD, 30_000, "goodwill", "manager", store.moment(at("2026-03-02 10:00")))
    store.exchange(CARD, "GIFT-UMBRELLA", 1, store.moment(at("2026-03-03 10:00")))  # 3,000
    with pytest.raises(RedeemRefused, match="17000 left today"):
        sell(store, "S1", [("A", "", 1, 400_000)], when="2026-03-03 11:00", redeem=17_100)
    sell(store, "S2", [("A", "", 1, 400_000)], when="2026-03-03 11:00", redeem=17_000)
    with pytest.raises(RedeemRefused, match="per_member_per_day"):
        store.exchange(CARD, "GIFT-UMBRELLA", 1, store.moment(at("2026-03-03 12:00")))
    store.exchange(CARD, "GIFT-UMBRELLA", 1, store.moment(at("2026-03-04 00:00")))  # a new day


# -- birthday week: the birthday and three days either side; 29 Feb is 28 Feb ------------------

@pytest.mark.parametrize(("born", "day", "doubled"), [
    ("1990-08-15", "2026-08-12", True), ("1990-08-15", "2026-08-18", True),
    ("1990-08-15", "2026-08-11", False), ("1990-08-15", "2026-08-19", False),
    ("1990-01-01", "2026-12-29", True), ("1990-12-31", "2027-01-03", True),
    ("2000-02-29", "2027-02-25", True), ("2000-02-29", "2027-03-03", True),
    ("2000-02-29", "2027-03-04", False), ("2000-02-29", "2028-03-03", True),
    ("2000-02-29", "2028-03-04", False),
])
def test_birthday_week_is_the_birthday_and_three_days_either_side(
        make_rules: Callable[..., Rules], open_store: Callable[..., LedgerStore],
        born: str, day: str, doubled: bool) -> None:
    store = open_store(make_rules(lambda d: d["earn"]["birthday"].update(window="week")))
    register(store, CARD, when="2026-03-02 10:00", birthday=date.fromisoformat(born))
    # A Tuesday-or-not weekday does not matter: compare with the same sale off the birthday.
    sold = sell(store, "S1", [("A", "", 1, 10_000)], when=f"{day} 12:00")
    assert sold.birthday is doubled


# -- a sale paid wholly with points gives back on list amounts -----------------------------------

def test_a_sale_paid_with_points_gives_back_in_proportion_to_list_amounts(
        make_rules: Callable[..., Rules], open_store: Callable[..., LedgerStore]) -> None:
    store = open_store(make_rules(lambda d: d["redeem"].update(max_percent_of_sale=100)))
    register(store, CARD, when="2026-03-02 10:00")
    store.adjust(CARD, 1_000, "goodwill", "manager", store.moment(at("2026-03-02 10:00")))
    sold = sell(store, "S1", [("A", "", 3, 200), ("B", "", 1, 400)], when="2026-03-02 11:00",
                redeem=1_000)
    assert (sold.paid_fen, sold.points_redeemed) == (0, 1_000)
    # List 1,000 fen; the first unit of A is 200 of it: 1000 - floor(1000 * 800 / 1000) = 200.
    first = store.refund("S1", [("A", 1)], store.moment(at("2026-03-02 12:00")))
    assert (first.refunded_fen, first.points_restored) == (0, 200)
    second = store.refund("S1", [("B", 1)], store.moment(at("2026-03-02 12:00")))
    assert second.points_restored == 400
    last = store.refund("S1", None, store.moment(at("2026-03-02 12:00")))
    assert last.points_restored == 400
    assert _balance(store, "2026-03-02 12:00") == 1_100
    assert store.check_invariants() == []


# -- step_points must be worth whole fen ---------------------------------------------------------

def test_rules_whose_step_is_not_worth_whole_fen_are_refused(
        make_rules: Callable[..., Rules], rules_data: dict[str, Any], tmp_path: Path) -> None:
    def odd_rate(data: dict[str, Any]) -> None:
        data["redeem"].update(points_per_yuan=300, step_points=100, min_points=300)

    with pytest.raises(RulesError, match=r"redeem\.step_points \(100\).*"
                                         r"redeem\.points_per_yuan \(300\)"):
        make_rules(odd_rate)
    make_rules(lambda d: d["redeem"].update(points_per_yuan=300, step_points=300))
    bad = {**rules_data, "redeem": {**rules_data["redeem"], "points_per_yuan": 300}}
    with pytest.raises(BuildError, match=r"redeem\.step_points"):
        check_rules(tmp_path / "rules.toml", _jsonable(bad))


# -- older readings, pinned here where no other test singles them out ---------------------------

def test_fixed_sku_points_on_an_excluded_category_are_none(store: LedgerStore) -> None:
    register(store, CARD)
    sold = sell(store, "S1", [("6901234567892", "tobacco", 2, 1_000)], when="2026-03-12 09:00")
    assert sold.points_earned == 0


def test_min_sale_is_compared_with_what_the_customer_paid(
        make_rules: Callable[..., Rules], open_store: Callable[..., LedgerStore]) -> None:
    store = open_store(make_rules(lambda d: d["redeem"].update(
        max_percent_of_sale=100, min_points=100)))
    register(store, CARD)
    # List 150 fen, 100 points take 100 fen off: paid 50 < min_sale_fen 100, nothing earned.
    sold = sell(store, "S1", [("A", "", 1, 150)], when="2026-03-12 09:00", redeem=100)
    assert (sold.paid_fen, sold.points_earned) == (50, 0)


def test_day_caps_are_reckoned_on_the_programme_zones_day(store: LedgerStore) -> None:
    register(store, CARD)
    big = [("B", "", 1, 1_000_000)]  # 10,000 yuan: the per-sale cap of 5,000 points
    # 23:30 and 00:30 in Shanghai are one UTC day (15:30, 16:30) but two programme days.
    assert sell(store, "S1", big, when="2026-03-12 23:30").points_earned == 5_000
    assert sell(store, "S2", big, when="2026-03-12 23:40").points_earned == 3_000
    assert sell(store, "S3", big, when="2026-03-13 00:30").points_earned == 5_000
