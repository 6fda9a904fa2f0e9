"""Tier reviews happen whether or not the member buys, and each sees the spend as it stood at
its own instant (rules.toml [tiers], issue 15 bugs 1 and 2)."""

from __future__ import annotations

import json
from pathlib import Path

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.tools.replay import REPLAY_CARD_KEY, replay

from .conftest import at, register, sell

CARD = "8000000001"
HOUSEHOLD_1200 = [("H1", "household", 1, 120_000)]


def test_a_review_without_a_sale_still_downgrades(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-04 10:00")
    sell(store, "S1", HOUSEHOLD_1200, when="2026-03-04 10:05")
    assert store.member(CARD, store.moment(at("2026-03-04 11:00"))).tier == "silver"
    # The review of 2027-04-01 saw no spend in its window: back to member, with no sale.
    view = store.member(CARD, store.moment(at("2027-04-02 09:00")))
    assert view.tier == "member"
    assert view.next_tier == "silver" and view.spend_to_next_fen == 100_000
    # Reading it wrote nothing; the next sale applies the same review.
    later = sell(store, "S2", [("A", "", 1, 10_000)], when="2027-04-02 10:00")
    assert later.discount_fen == 0 and later.member is not None and later.member.tier == "member"


def test_a_review_before_the_window_ends_keeps_the_tier(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-04 10:00")
    sell(store, "S1", HOUSEHOLD_1200, when="2026-03-04 10:05")
    # The 2027-03-01 review still saw the 2026-03-04 sale in its 12 months.
    assert store.member(CARD, store.moment(at("2027-03-31 23:00"))).tier == "silver"


def test_replay_members_show_the_reviewed_tier(rules: Rules, tmp_path: Path) -> None:
    steps = [
        {"at": "2026-03-04T10:00:00+08:00"},
        {"register": {"card": CARD}},
        {"sale": {"id": "S1", "card": CARD, "lines": [
            {"sku": "H1", "category": "household", "qty": 1, "price_fen": 120_000}]}},
        {"at": "2027-04-02T00:00:00+08:00"},
    ]
    store = LedgerStore.open(tmp_path / "r.db", rules, REPLAY_CARD_KEY, Identity("S001", "T01"))
    try:
        out = replay({"steps": steps}, store)
    finally:
        store.close()
    assert json.loads(json.dumps(out["members"]))[0]["tier"] == "member"


def test_a_late_review_does_not_count_refunds_made_after_its_instant(store: LedgerStore) -> None:
    register(store, CARD, when="2026-03-04 10:00")
    sell(store, "S1", HOUSEHOLD_1200, when="2026-03-04 10:05")
    store.refund("S1", None, store.moment(at("2026-04-03 10:00")))
    # The 1 April review saw 120,000 fen: silver until 1 May.
    late = sell(store, "S2", [("H2", "household", 1, 10_000)], when="2026-04-03 10:05")
    assert (late.discount_fen, late.paid_fen, late.points_earned) == (200, 9_800, 176)
    assert late.member is not None and late.member.tier == "silver"
    # The 1 May review sees the refund: member.
    may = store.member(CARD, store.moment(at("2026-05-01 00:00")))
    assert may.tier == "member"
