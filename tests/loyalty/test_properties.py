"""Property tests: random sequences of ledger operations keep every invariant after each step.

After every step: balance = sum of entries = sum of lot remainders less debt, no lot below zero
or above its points, a redemption took the soonest-expiring lots first, a repeated refund id
changes nothing, the caps hold, sequence numbers only grow, and a refused step changed nothing.
Time jumps (to review instants and to lots' expiry instants too) with no sale and no sweep
after them: the tier shown is the one every review due by then decided (an independent reading
of [tiers] from the sale and refund rows), and the balance shown is what the sweep would leave.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from terminal.loyalty.calendar import add_months, month_start
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.models import db_proxy
from tests.support.shared import EXAMPLES

from .conftest import KEY, at
from .test_store import dump

CARDS = [f"80000000{i:02d}" for i in range(4)]
CATEGORIES = ["", "fresh", "household", "tobacco"]
line_strategy = st.builds(
    Line,
    sku=st.sampled_from(["A", "B", "6901234567892"]),
    qty=st.integers(1, 4),
    price_fen=st.integers(0, 60_000),
    category=st.sampled_from(CATEGORIES),
)


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def open(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.rules = load_rules(EXAMPLES / "rules.toml")
        self.store = LedgerStore.open(Path(self.dir.name) / "p.db", self.rules, KEY,
                                      Identity("S001", "T01"))
        self.now = at("2026-03-02 09:00")
        self.trusted = True
        self.sales: list[str] = []
        self.refund_ids: list[str] = []
        self.count = 0
        self.last_seq = 0
        for card in CARDS[:3]:  # most steps act on members who exist and hold points
            self.store.register(Registration(card=card), self.moment())
            self.store.adjust(card, 5000, "opening balance", "test", self.moment())

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()
            self.dir.cleanup()

    def moment(self):  # type: ignore[no-untyped-def]
        return self.store.moment(self.now, self.trusted)

    def attempt(self, action) -> object:  # type: ignore[no-untyped-def]
        """Run one operation; a refusal must leave every table as it was."""
        before = dump(self.store)
        try:
            return action()
        except Refused:
            assert dump(self.store) == before
            return None

    @rule(card=st.sampled_from(CARDS), referrer=st.sampled_from([None, *CARDS]))
    def register(self, card: str, referrer: str | None) -> None:
        self.attempt(lambda: self.store.register(
            Registration(card=card, referrer_card=referrer), self.moment()))

    @rule(card=st.sampled_from([None, *CARDS]), lines=st.lists(line_strategy, min_size=1,
                                                               max_size=4),
          redeem=st.sampled_from([0, 0, 500, 600, 1000, 2500]), online=st.booleans())
    def sale(self, card: str | None, lines: list[Line], redeem: int, online: bool) -> None:
        self.count += 1
        sale_id = f"S{self.count}"
        result = self.attempt(lambda: self.store.sale(
            SaleRequest(id=sale_id, lines=lines, card=card, redeem_points=redeem),
            self.moment(), online=online))
        if result is None:
            return
        self.sales.append(sale_id)
        caps = self.rules.earn
        assert caps.cap_per_sale is None or result.points_earned <= caps.cap_per_sale
        if redeem:
            self.check_fifo(sale_id)

    def check_fifo(self, sale_id: str) -> None:
        taken = self.store.db.execute_sql(
            "SELECT l.expires_us, l.remaining, l.member_id FROM allocation a "
            "JOIN ledger_entry e ON e.id = a.entry_id JOIN lot l ON l.id = a.lot_id "
            "WHERE e.sale_id = ? AND e.kind = 'redeem'", (sale_id,)).fetchall()
        latest = max(t[0] for t in taken)
        member = taken[0][2]
        earlier_open = self.store.db.execute_sql(
            "SELECT count(*) FROM lot WHERE member_id = ? AND remaining > 0 AND expires_us < ?",
            (member, latest)).fetchone()[0]
        assert earlier_open == 0, "a sooner-expiring lot was left while a later one was used"

    @precondition(lambda self: self.sales)
    @rule(pick=st.integers(0, 1000), whole=st.booleans(), qty=st.integers(1, 3),
          sku=st.sampled_from(["A", "B", "6901234567892"]))
    def refund(self, pick: int, whole: bool, qty: int, sku: str) -> None:
        sale_id = self.sales[pick % len(self.sales)]
        refund_id = f"R{len(self.refund_ids) + 1}"
        lines = None if whole else [(sku, qty)]
        if self.attempt(lambda: self.store.refund(sale_id, lines, self.moment(),
                                                  refund_id=refund_id)) is not None:
            self.refund_ids.append(refund_id)

    @precondition(lambda self: self.refund_ids)
    @rule(pick=st.integers(0, 1000))
    def repeat_refund(self, pick: int) -> None:
        refund_id = self.refund_ids[pick % len(self.refund_ids)]
        row = self.store.db.execute_sql("SELECT sale_id FROM refund WHERE id = ?",
                                        (refund_id,)).fetchone()
        before = dump(self.store)
        result = self.store.refund(row[0], None, self.moment(), refund_id=refund_id)
        assert result.repeated and dump(self.store) == before

    @rule(card=st.sampled_from(CARDS), points=st.integers(-3000, 3000))
    def adjust(self, card: str, points: int) -> None:
        self.attempt(lambda: self.store.adjust(card, points, "test", "manager", self.moment()))

    @rule(card=st.sampled_from(CARDS))
    def exchange(self, card: str) -> None:
        self.attempt(lambda: self.store.exchange(card, "GIFT-UMBRELLA", 1, self.moment()))

    @rule()
    def expire(self) -> None:
        self.store.expire(self.moment())

    @rule(days=st.integers(0, 400), trusted=st.booleans())
    def clock(self, days: int, trusted: bool) -> None:
        # A microsecond too: no step lands on a review instant (00:00 on the 1st) itself.
        self.now += timedelta(days=days, hours=1, microseconds=1)
        self.trusted = trusted

    @rule(months=st.integers(1, 14))
    def to_a_review(self, months: int) -> None:
        """Just past a monthly review, months on, on a trusted clock; no sale follows yet."""
        start = month_start(self.now, self.rules.zone)
        self.now = add_months(start, months) + timedelta(microseconds=1)
        self.trusted = True

    @rule(pick=st.integers(0, 1000))
    def to_an_expiry_instant(self, pick: int) -> None:
        """To the very instant a lot with points left expires, on a trusted clock; no sweep."""
        instants = [row[0] for row in self.store.db.execute_sql(
            "SELECT DISTINCT expires_us FROM lot WHERE remaining > 0 AND expires_us > ? "
            "ORDER BY expires_us", (to_micros(self.now),)).fetchall()]
        if instants:
            self.now = from_micros(instants[pick % len(instants)]).astimezone(self.rules.zone)
            self.trusted = True

    @invariant()
    def shown_balances_are_what_the_sweep_would_leave(self) -> None:
        if not hasattr(self, "store"):
            return
        shown = {card: self.store.member(card, self.moment()).balance
                 for card in self.registered()}
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "swept.db"
            target = sqlite3.connect(copy)
            try:
                self.store.db.connection().backup(target)
            finally:
                target.close()
            swept = LedgerStore.open(copy, self.rules, KEY, Identity("S001", "T01"),
                                     new_session=False)
            try:
                swept.expire(self.moment())
                after = {card: swept.balance(card).balance for card in shown}
            finally:
                swept.close()
                db_proxy.initialize(self.store.db)  # the models follow the last store opened
        assert shown == after

    @invariant()
    def tiers_are_what_every_due_review_decided(self) -> None:
        if not hasattr(self, "store") or not self.trusted:
            return
        for card in self.registered():
            view = self.store.member(card, self.moment())
            assert view.tier == self.expected_tier(view.id), card

    def registered(self) -> list[str]:
        known = {row[0] for row in self.store.db.execute_sql(
            "SELECT card_last4 FROM member").fetchall()}
        return [card for card in CARDS if card[-4:] in known]

    def expected_tier(self, member_id: str) -> str:
        """[tiers] read from the rows alone: the review at the last 1st sets the tier from the
        spend in its 12 months as it stood then (refunds made by then); each sale since raised
        it at once to what the spend qualified for when that sale was recorded."""
        sales = self.store.db.execute_sql(
            "SELECT id, seq, wall_us, paid_fen FROM sale WHERE member_id = ? ORDER BY seq",
            (member_id,)).fetchall()
        refunds = self.store.db.execute_sql(
            "SELECT r.sale_id, r.seq, r.wall_us, r.refunded_fen FROM refund r "
            "JOIN sale s ON s.id = r.sale_id WHERE s.member_id = ?", (member_id,)).fetchall()

        def spend(end: datetime, upto_seq: float) -> int:
            start_us = to_micros(add_months(end.astimezone(self.rules.zone),
                                            -self.rules.tier_window_months))
            end_us = to_micros(end)
            counted = {sid for sid, seq, wall, _ in sales
                       if start_us < wall <= end_us and seq <= upto_seq}
            paid = sum(fen for sid, _, _, fen in sales if sid in counted)
            back = sum(fen for sid, seq, wall, fen in refunds
                       if sid in counted and wall <= end_us and seq < upto_seq)
            return paid - back

        def level(fen: int) -> int:
            return max(i for i, t in enumerate(self.rules.tiers) if fen >= t.qualify_spend_fen)

        review = month_start(self.now, self.rules.zone)
        rank = level(spend(review, float("inf")))
        for _, seq, wall, _ in sales:
            if wall > to_micros(review):
                rank = max(rank, level(spend(from_micros(wall), seq)))
        return self.rules.tiers[rank].name

    @invariant()
    def ledger_is_sound(self) -> None:
        if not hasattr(self, "store"):
            return
        assert self.store.check_invariants() == []
        day_cap = self.rules.earn.cap_per_member_per_day
        worst = self.store.db.execute_sql("SELECT MAX(earned) FROM member_day").fetchone()[0]
        assert day_cap is None or worst is None or worst <= day_cap
        seq = int(self.store.db.execute_sql(
            "SELECT value FROM meta WHERE key = 'seq'").fetchone()[0] if self.store.db.
            execute_sql("SELECT 1 FROM meta WHERE key = 'seq'").fetchone() else 0)
        assert seq >= self.last_seq
        self.last_seq = seq


LedgerMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerProperties = LedgerMachine.TestCase
