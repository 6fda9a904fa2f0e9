"""A member HQ knows from another store: imported without a bonus, redeeming HQ's points here
with what the local lots cannot cover carried as debt; bad imports refused, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.loyalty.errors import DuplicateId, InvalidInput, RedeemRefused
from terminal.loyalty.operations import SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.ledger_store import HeldAtHq
from terminal.loyalty.store.models import LedgerEntry, Member, Outbox
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
