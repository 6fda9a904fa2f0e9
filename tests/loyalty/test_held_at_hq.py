"""A member HQ knows from another store: imported without a bonus, redeeming HQ's points here
with what the local lots cannot cover carried as debt; bad imports refused, nothing changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from terminal.loyalty.errors import DuplicateId, InvalidInput, RedeemRefused
from terminal.loyalty.operations import SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.ledger_store import HeldAtHq
from terminal.loyalty.store.models import MODELS, LedgerEntry, Member, MemberDay, Outbox
from tests.loyalty.conftest import at, register, sell

CARD = "8000000001"


def _counts() -> tuple[int, int, int]:
    return Member.select().count(), LedgerEntry.select().count(), Outbox.select().count()


def _redeem(store: LedgerStore, points: int, held: HeldAtHq | None, **kw: Any) -> Any:
    req = SaleRequest(id="s2", card=CARD, redeem_points=points,
                      lines=[Line(sku="A", category="", qty=1, price_fen=20000)])
    return store.sale(req, store.moment(at("2026-03-02 12:00")), held_at_hq=held, **kw)


def test_import_records_hqs_tier_without_bonus_and_an_import_event(store: LedgerStore) -> None:
    view = store.import_member(CARD, "gold", store.moment(at("2026-03-02 10:00")), "ann")
    assert (view.tier, view.balance, view.card_last4) == ("gold", 0, "0001")
    assert LedgerEntry.select().count() == 0
    assert [row.kind for row in Outbox.select()] == ["import"]


@pytest.mark.parametrize("tier, error", [("platinum", InvalidInput), ("member", DuplicateId)])
def test_a_bad_import_is_refused_and_changes_nothing(store: LedgerStore, tier: str,
                                                     error: type[Exception]) -> None:
    register(store, CARD)  # a duplicate for the second case; the first fails on the tier
    before = _counts()
    with pytest.raises(error):
        store.import_member(CARD, tier, store.moment(at("2026-03-02 11:00")))
    assert _counts() == before


def test_redemption_held_at_hq_takes_local_lots_then_debt(store: LedgerStore) -> None:
    register(store, CARD)  # 100 points bonus here; HQ says 900 chain-wide
    result = _redeem(store, 500, HeldAtHq(900, "hold-1"))
    assert result.points_redeemed == 500
    entry = LedgerEntry.get(LedgerEntry.kind == "redeem")
    assert (entry.points, entry.debt_delta, entry.reason) == (-500, 400, "held at HQ: hold-1")
    member = Member.get()
    assert member.balance == 100 - 500 + result.points_earned and member.debt > 0
    assert store.check_invariants() == []


def test_redemption_held_at_hq_is_checked_against_hqs_balance(store: LedgerStore) -> None:
    register(store, CARD)
    before = _counts()
    with pytest.raises(RedeemRefused, match="more than the balance"):
        _redeem(store, 600, HeldAtHq(500, "hold-1"))
    with pytest.raises(RedeemRefused, match="offline_allowance"):
        _redeem(store, 2100, HeldAtHq(9000, "hold-1", offline=True), online=False)
    with pytest.raises(InvalidInput):
        _redeem(store, 500, HeldAtHq(900, "hold-1"), reconcile="S002/T01 sale 1")
    assert _counts() == before
    sell(store, "s3", [("A", "", 1, 1000)])  # the local balance alone allows no redemption
    with pytest.raises(RedeemRefused):
        _redeem(store, 500, None)



# -- goods exchange against HQ's balance ----------------------------------------------------------

UMBRELLA = "GIFT-UMBRELLA"  # 3000 points, one per exchange, two per member


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table: what "changes nothing" compares."""
    return {model._meta.table_name: sorted(model.select().tuples(), key=repr)
            for model in MODELS}


def _exchange(store: LedgerStore, held: HeldAtHq | None, qty: int = 1,
              when: str = "2026-03-02 12:00", **kw: Any) -> Any:
    return store.exchange(CARD, UMBRELLA, qty, store.moment(at(when)), operator="ann",
                          held_at_hq=held, **kw)


def test_exchange_held_at_hq_is_checked_against_hqs_balance_and_carries_debt(
        store: LedgerStore) -> None:
    store.import_member(CARD, "member", store.moment(at("2026-03-02 10:00")))  # no lots here
    result = _exchange(store, HeldAtHq(5000, "hold-x"), exchange_id="x-1")
    assert (result.id, result.points) == ("x-1", 3000)
    entry = LedgerEntry.get(LedgerEntry.kind == "redeem")
    assert (entry.points, entry.debt_delta, entry.sale_id) == (-3000, 3000, "x-1")
    assert entry.reason == "exchange GIFT-UMBRELLA x1; held at HQ: hold-x"
    member = Member.get()
    assert (member.balance, member.debt) == (-3000, 3000)
    assert result.member.balance == -3000  # this till's share; the flow shows HQ's figure
    day = MemberDay.get()
    assert (day.redeemed, day.offline_redeemed) == (3000, 0)
    assert store.check_invariants() == []
    [event] = [json.loads(row.payload) for row in Outbox.select() if row.kind == "exchange"]
    assert event["body"]["exchange"] == "x-1" and event["body"]["points"] == 3000


def test_exchange_held_at_hq_takes_the_local_lots_first_then_debt(store: LedgerStore) -> None:
    register(store, CARD)  # 100 points here
    _exchange(store, HeldAtHq(3000, "hold-y"))
    entry = LedgerEntry.get(LedgerEntry.kind == "redeem")
    assert (entry.points, entry.debt_delta) == (-3000, 2900)
    assert entry.reason.endswith("; held at HQ: hold-y")
    assert (Member.get().balance, Member.get().debt) == (-2900, 2900)
    assert store.check_invariants() == []


def test_exchange_held_at_hq_keeps_every_limit_and_a_refusal_changes_nothing(
        make_rules: Callable[..., Rules], open_store: Callable[..., LedgerStore]) -> None:
    def generous_allowance(data: dict[str, Any]) -> None:
        data["redeem"]["offline_allowance"] = 4000  # one umbrella offline, not two

    store = open_store(make_rules(generous_allowance))
    store.import_member(CARD, "member", store.moment(at("2026-03-02 10:00")))
    _exchange(store, HeldAtHq(9000, "hold-1", offline=True), online=False)  # 3000 of 4000
    before = _tables()
    refusals: list[tuple[HeldAtHq | None, dict[str, Any], type[Exception], str]] = [
        (HeldAtHq(2999, "hold-2"), {}, RedeemRefused, "more than the balance"),
        (None, {}, RedeemRefused, "more than the balance"),  # the local balance alone: -3000
        (HeldAtHq(9000, "hold-2"), {"qty": 2}, RedeemRefused, "per_sale_limit"),
        (HeldAtHq(9000, "hold-2", offline=True), {"online": False}, RedeemRefused,
         "offline_allowance"),
        (HeldAtHq(9000, "hold-2"), {"reconcile": "S002/T01 exchange 1"}, InvalidInput,
         "against itself"),
        (HeldAtHq(9000, "hold-2"), {"exchange_id": "no spaces"}, InvalidInput, "exchange id"),
    ]
    for held, kw, error, match in refusals:
        with pytest.raises(error, match=match):
            _exchange(store, held, **kw)
    assert _tables() == before
    done = _exchange(store, HeldAtHq(9000, "hold-3"), exchange_id="x-2")  # online: allowed
    after = _tables()
    for held, kw, error, match in [
        (HeldAtHq(9000, "hold-4"), {"exchange_id": "x-2"}, DuplicateId, "already recorded"),
        (HeldAtHq(90000, "hold-4"), {}, RedeemRefused, "per_member_limit"),
    ]:
        with pytest.raises(error, match=match):
            _exchange(store, held, **kw)
    assert _tables() == after
    assert done.member.balance == -6000 and store.check_invariants() == []


# -- the tier HQ reported is the floor of the monthly review -------------------------------------


def _tier() -> str:
    return Member.get().tier


def test_the_review_keeps_the_tier_hq_reported_and_local_upgrades_still_apply(
        store: LedgerStore) -> None:
    store.import_member(CARD, "gold", store.moment(at("2026-03-02 10:00")))  # gold at HQ
    # April's review: this till saw no spend, but HQ said gold, so gold it stays.
    sale = sell(store, "s1", [("A", "", 1, 1000)], when="2026-04-05 12:00")
    assert _tier() == "gold" and sale.discount_fen == 50  # gold's 5%
    # HQ now says silver: no downgrade before the review...
    store.note_hq_tier(CARD, "silver", store.moment(at("2026-04-10 12:00")))
    sell(store, "s2", [("A", "", 1, 1000)], when="2026-04-11 12:00")
    assert _tier() == "gold"
    # ...and May's review goes down to HQ's silver, not to what this till's spend qualifies for.
    sell(store, "s3", [("A", "", 1, 1000)], when="2026-05-03 12:00")
    assert _tier() == "silver"
    # Local spend still upgrades at once, above what HQ said.
    sell(store, "s4", [("A", "", 1, 2_100_000)], when="2026-05-04 12:00")
    assert _tier() == "diamond"
    assert store.check_invariants() == []


def test_hqs_higher_tier_applies_at_once_and_its_floor_outlasts_the_spend_window(
        store: LedgerStore) -> None:
    register(store, CARD)  # a member of this store, known at HQ too
    assert _tier() == "member"
    moment = store.moment(at("2026-03-03 10:00"))
    store.note_hq_tier(CARD, "gold", moment)
    assert _tier() == "gold"
    meta = _tables()["meta"]
    store.note_hq_tier(CARD, "gold", store.moment(at("2026-03-04 10:00")))  # the same answer
    store.note_hq_tier(CARD, "platinum", moment)  # not a tier of these rules: ignored
    assert _tables()["meta"] == meta and _tier() == "gold"
    # The control: a member HQ never answered for, silver by this till's own spend...
    other = "8000000002"
    register(store, other)
    sell(store, "s1", [("A", "", 1, 100_000)], card=other, when="2026-03-05 12:00")
    assert Member.get(Member.card_last4 == "0002").tier == "silver"
    # ...is reviewed down once that spend has left the window; HQ's gold is still the floor.
    for sale_id, card in (("s2", CARD), ("s3", other)):
        sell(store, sale_id, [("A", "", 1, 1000)], card=card, when="2027-04-05 12:00")
    assert _tier() == "gold"
    assert Member.get(Member.card_last4 == "0002").tier == "member"
    assert store.check_invariants() == []


def test_refunding_a_redemption_held_at_hq_cancels_the_debt_it_made(store: LedgerStore) -> None:
    """Points HQ held for this sale were never in a local lot: giving them back on a refund
    cancels the debt the redemption recorded (HQ, which holds the lots, gives them back there)."""
    register(store, CARD)  # 100 points here; HQ says 900 chain-wide
    _redeem(store, 500, HeldAtHq(900, "hold-1"))
    result = store.refund("s2", None, store.moment(at("2026-03-02 13:00")))
    assert result.points_restored == 500
    member = Member.get()
    assert (member.balance, member.debt) == (100, 0)
    restore = LedgerEntry.get(LedgerEntry.kind == "restore")
    assert (restore.points, restore.debt_delta) == (500, -400)
    assert store.check_invariants() == []
