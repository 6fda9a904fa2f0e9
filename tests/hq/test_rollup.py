"""The reports' roll-ups (terminal.hq.rollup) against the reference: the same reports computed
from the ledger itself (``rolled=False``), on SQLite and PostgreSQL.

Hypothesis writes a chain event by event straight into HQ's tables, each event its own
transaction with its applied event's span of the sequence, as the collectors commit them: member
sales at two stores (and a few without a member), refunds of a unit or of every unit (some long
after the sale, some of a sale already partly refunded), redemptions from lots issued at either
store, restores of them, HQ's own entries (an expiry, an adjustment: no store's) and members' tier
changes (an upgrade, a review, one to a tier the rules lack), which no event carries. Times fall
on either side of Shanghai's midnight (16:00 UTC). Between any two events a catch-up may run, so
the roll-ups are checked after runs split at arbitrary points of the sequence. The database
keeps every example's rows (ids are new each time): the comparison is over all of them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peewee import Database, fn

from terminal.hq import analytics, analytics_sql, migrations, points_reports, rollup
from terminal.hq.analytics import Period, Thresholds
from terminal.hq.bundles import read_toml
from terminal.hq.cli import main
from terminal.hq.console.insights import Scope, daily_sales
from terminal.hq.database import open_hq_database, snapshot
from terminal.hq.models import HQ_MODELS, AppliedEvent, MemberHome
from terminal.loyalty import ledger
from terminal.loyalty.rules import Rules, load_rules
from terminal.loyalty.store.models import (
    MODELS,
    Allocation,
    LedgerEntry,
    Lot,
    Member,
    Meta,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
)
from tests.hq.test_analytics import RULES

ZONE_RULES = load_rules(RULES)


def _low_tiers() -> Rules:
    """The example rules with tiers a few sales reach: silver 5,000 fen, gold 20,000, diamond
    60,000 (near the next one: 4,500, 18,000, 54,000 and up)."""
    mapping = read_toml(RULES)
    for level, bound in zip(mapping["tiers"]["level"], (0, 5_000, 20_000, 60_000), strict=True):
        level["qualify_spend_fen"] = bound
    return Rules.from_mapping(mapping)


NEAR_RULES = _low_tiers()
TIERS = ("member", "silver", "gold", "diamond", "retired")  # the last one the rules lack
DAY_US = 86_400_000_000
T0_US = 1_790_870_400_000_000  # 2026-10-01 16:00 UTC: midnight of 2 October in Shanghai
HOURS = (0, 7, 8, 15, 16, 23)  # UTC hours: 15:xx is the local day's end, 16:00 the next start
STORES = ("S001", "S002")
_ids = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}-{id(_ids) % 997}"


@pytest.fixture(params=["sqlite", "postgresql"])
def hq(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = str(tmp_path / "hq.db")
    if request.param == "postgresql":
        from tests.hq.test_postgres_collector import fresh_database

        url = fresh_database(request.getfixturevalue("postgres"))
    db = open_hq_database(url)
    yield db
    db.close()


class Writer:
    """Events written as the collectors commit them: one transaction each, its rows numbered
    from the chain sequence and its applied event naming the span (none for HQ's own)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.bind_ctx(MODELS + HQ_MODELS):
            top = [LedgerEntry.select(fn.MAX(LedgerEntry.seq)).scalar() or 0,
                   Sale.select(fn.MAX(Sale.seq)).scalar() or 0,
                   Refund.select(fn.MAX(Refund.seq)).scalar() or 0]
        self.seq = max(top) + 1000
        self.members: list[str] = []
        self.sales: list[tuple[str, int, int]] = []  # (sale id, units, fen): refundable
        self.lots: list[tuple[str, str]] = []  # (lot id, member)
        self.redemptions: list[tuple[str, str, str, int]] = []  # (entry, member, lot, points)

    def next(self) -> int:
        self.seq += 1
        return self.seq

    def event(self, store: str | None, at_us: int, write: Callable[[], object]) -> None:
        with self.db.bind_ctx(MODELS + HQ_MODELS), self.db.atomic():
            first = self.seq + 1
            write()
            if store is not None and self.seq >= first:
                AppliedEvent.create(id=new_id("a"), store=store, terminal="T01", seq=first,
                                    epoch=1, kind="x", wall_us=at_us, applied_us=at_us,
                                    outcome="applied", first_seq=first, last_seq=self.seq)
            Meta.insert(key="seq", value=str(self.seq)).on_conflict(
                conflict_target=[Meta.key], update={Meta.value: str(self.seq)}).execute()

    def entry(self, member: str, kind: str, points: int, at_us: int, sale: str | None = None
              ) -> str:
        entry = new_id("e")
        LedgerEntry.create(id=entry, seq=self.next(), member=member, kind=kind, points=points,
                           sale_id=sale, wall_us=at_us, trusted=True)
        return entry

    def register(self, store: str, at_us: int) -> None:
        member = new_id("m")

        def write() -> None:
            Member.create(id=member, card_hash=new_id("h"), card_last4="0000",
                          registered_us=at_us, tier=TIERS[len(self.members) % len(TIERS)])
            MemberHome.create(member=member, store=store, since_us=at_us)
            self._lot(member, self.entry(member, ledger.BONUS, 100, at_us), 100, at_us)

        self.event(store, at_us, write)
        self.members.append(member)

    def _lot(self, member: str, entry: str, points: int, at_us: int) -> None:
        """A lot expiring a year on, or (every third) at the local midnight a year and a day
        on; every fourth dated on an untrusted clock (till :meth:`date_lots`)."""
        count = len(self.lots)
        expires = at_us + 365 * DAY_US
        if count % 3 == 1:
            expires = at_us - (at_us - T0_US) % DAY_US + 366 * DAY_US
        Lot.create(id=entry, member=member, earned_us=at_us, expires_us=expires,
                   points=points, remaining=points, dated_trusted=count % 4 != 3)
        self.lots.append((entry, member))

    def sell(self, store: str, member: str | None, at_us: int, lines: list[tuple[int, int]]
             ) -> None:
        sale = new_id("s")
        paid = sum(qty * price for qty, price in lines)

        def write() -> None:
            Sale.create(id=sale, seq=self.next(), member=member, wall_us=at_us, trusted=True,
                        tender="cash", list_fen=paid, discount_fen=0, deduction_fen=0,
                        paid_fen=paid, points_earned=paid // 100, points_redeemed=0)
            for number, (qty, price) in enumerate(lines, 1):
                SaleLine.create(sale=sale, line_no=number, sku=f"SKU{price % 7}",
                                name=f"商品{price}{store}", category=f"C{qty % 2}", qty=qty,
                                price_fen=price, list_fen=qty * price, paid_fen=qty * price)
            if member is not None and paid >= 100:
                self._lot(member, self.entry(member, ledger.EARN, paid // 100, at_us, sale),
                          paid // 100, at_us)

        self.event(store, at_us, write)
        self.sales.append((sale, sum(qty for qty, _ in lines), paid))

    def refund(self, store: str, which: int, whole: bool, at_us: int) -> None:
        sale, units, paid = self.sales[which % len(self.sales)]

        def write() -> None:
            refund = new_id("r")
            qty, fen = (units, paid) if whole else (1, paid // max(units, 1))
            Refund.create(id=refund, seq=self.next(), sale=sale, kind="refund", wall_us=at_us,
                          trusted=True, refunded_fen=fen, points_reversed=0, points_restored=0)
            RefundLine.create(refund=refund, line_no=1, qty=qty, fen=fen)

        self.event(store, at_us, write)

    def redeem(self, store: str, which: int, points: int, at_us: int) -> None:
        """Take up to ``points`` from a lot, as the ledger does: an allocation, and the lot's
        points left moved by it."""
        lot, member = self.lots[which % len(self.lots)]

        def write() -> None:
            taken = min(points, Lot.get_by_id(lot).remaining)
            if taken <= 0:
                return
            entry = self.entry(member, ledger.REDEEM, -taken, at_us)
            Allocation.create(entry=entry, lot=lot, points=-taken)
            Lot.update(remaining=Lot.remaining - taken).where(Lot.id == lot).execute()
            self.redemptions.append((entry, member, lot, taken))

        self.event(store, at_us, write)

    def restore(self, store: str, which: int, at_us: int) -> None:
        _, member, lot, points = self.redemptions[which % len(self.redemptions)]

        def write() -> None:
            entry = self.entry(member, ledger.RESTORE, points, at_us)
            Allocation.create(entry=entry, lot=lot, points=points)
            Lot.update(remaining=Lot.remaining + points).where(Lot.id == lot).execute()

        self.event(store, at_us, write)

    def date_lots(self, at_us: int, move: bool) -> None:
        """Date the lots earned on an untrusted clock, as the store does once the clock is
        trusted (their expiry at least a year from ``at_us``); with ``move``, also move a
        dated lot's expiry by a day (nothing does; the roll-up of lots is computed again)."""
        with self.db.bind_ctx(MODELS + HQ_MODELS), self.db.atomic():
            floor = at_us + 365 * DAY_US
            for lot in Lot.select().where(~Lot.dated_trusted):
                Lot.update(expires_us=max(lot.expires_us, floor), dated_trusted=True).where(
                    Lot.id == lot.id).execute()
            if move and self.lots:
                Lot.update(expires_us=Lot.expires_us + DAY_US).where(
                    Lot.id == self.lots[0][0]).execute()

    def tier(self, which: int, tier: str) -> None:
        """A member's tier changed, as a till's upgrade, a tier review or an HQ merge writes
        it (no event of its own: the roll-up learns it from the trigger's queue)."""
        with self.db.bind_ctx(MODELS + HQ_MODELS), self.db.atomic():
            Member.update(tier=tier).where(
                Member.id == self.members[which % len(self.members)]).execute()

    def hq_entry(self, which: int, kind: str, at_us: int) -> None:
        _, member = self.lots[which % len(self.lots)]
        self.event(None, at_us, lambda: self.entry(member, kind, -3 if kind == ledger.EXPIRE
                                                   else 7, at_us))


moment = st.builds(lambda day, hour, minute: T0_US + day * DAY_US + (hour - 16) * 3_600_000_000
                   + minute * 60_000_000,
                   st.integers(0, 120), st.sampled_from(HOURS), st.sampled_from((0, 59)))
step = st.one_of(
    st.tuples(st.just("register"), st.sampled_from(STORES), moment),
    st.tuples(st.just("sell"), st.sampled_from(STORES), st.integers(0, 30), moment,
              st.lists(st.tuples(st.integers(1, 3), st.sampled_from((250, 1000, 5000))),
                       min_size=1, max_size=2)),
    st.tuples(st.just("refund"), st.sampled_from(STORES), st.integers(0, 50), st.booleans(),
              moment),
    st.tuples(st.just("redeem"), st.sampled_from(STORES), st.integers(0, 50),
              st.integers(1, 40), moment),
    st.tuples(st.just("restore"), st.sampled_from(STORES), st.integers(0, 50), moment),
    st.tuples(st.just("hq"), st.integers(0, 50), st.sampled_from((ledger.EXPIRE, ledger.ADJUST)),
              moment),
    st.tuples(st.just("date lots"), moment, st.booleans()),
    st.tuples(st.just("tier"), st.integers(0, 30), st.sampled_from(TIERS)),
    st.just(("catch up",)),
)


def play(writer: Writer, steps: list[tuple]) -> None:
    zone = ZONE_RULES.zone
    for store in (*STORES, STORES[0]):  # members to buy from the first step on
        writer.register(store, T0_US - 30 * DAY_US)
    for action, *args in steps:
        if action == "catch up":
            rollup.catch_up(writer.db, zone)
        elif action == "register":
            writer.register(*args)
        elif action == "sell":
            store, who, at_us, lines = args
            member = (writer.members[who % len(writer.members)]
                      if writer.members and who % 5 else None)  # a fifth without a member
            writer.sell(store, member, at_us, lines)
        elif action == "refund" and writer.sales:
            writer.refund(*args)
        elif action == "redeem" and writer.lots:
            writer.redeem(*args)
        elif action == "restore" and writer.redemptions:
            writer.restore(*args)
        elif action == "hq" and writer.lots:
            writer.hq_entry(*args)
        elif action == "date lots":
            writer.date_lots(*args)
        elif action == "tier":
            writer.tier(*args)


PERIODS = [(date(2026, 10, 2), date(2026, 11, 1)), (date(2026, 10, 15), date(2026, 10, 16)),
           (date(2026, 10, 1), date(2026, 10, 25)), (date(2026, 9, 20), date(2026, 11, 20)),
           (date(2026, 11, 1), date(2027, 2, 1)), (date(2026, 9, 1), date(2026, 10, 3)),
           (date(2026, 10, 1), date(2026, 11, 1))]  # a calendar month: agg_member_month
# The tier window (12 months) of this one starts at midnight of 2 November 2026 (T0 + 31 days).
LATE = (date(2027, 10, 1), date(2027, 11, 2))


EXPIRING = [date(2027, 9, 1), date(2027, 10, 1), date(2027, 10, 2), date(2027, 11, 15),
            date(2026, 10, 1)]


def pages(read: Callable[[tuple[int, str] | None], list[tuple[str, int]]]
          ) -> list[tuple[str, int]]:
    """Every page of a list read ``read(after)`` at a time, joined."""
    found: list[tuple[str, int]] = []
    while True:
        page = read((found[-1][1], found[-1][0]) if found else None)
        if not page:
            return found
        found += page


def compare(db: Database) -> None:
    rollup.catch_up(db, ZONE_RULES.zone)
    thresholds = Thresholds((1, 7, 30, 60), (2, 3, 4, 5), (500, 1000, 5000, 20000))
    with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
        for (start, end), store in itertools.product(PERIODS, (None, *STORES)):
            period = Period(start, end, ZONE_RULES.zone)
            assert analytics.buyers(period, store, 30) == analytics.buyers(
                period, store, 30, rolled=False)
            scope = Scope(store, period)  # the dashboard's member sales per day
            assert daily_sales(scope) == daily_sales(scope, rolled=False)
            for days in (1, 30, 90):  # dormancy counted from the rows after ``to`` or before
                cut = (period.end_day - (days - 1), analytics.dormancy_cut(period, days))
                assert analytics_sql.rolled_dormancy(db, store, *cut, period.end_day) == \
                    analytics_sql.rolled_dormancy(db, store, *cut, period.end_day, 10**6)
            for days in (1, 14, 90):
                assert analytics.analytics(NEAR_RULES, period, store, days, thresholds) == \
                    analytics.analytics(NEAR_RULES, period, store, days, thresholds,
                                        rolled=False), (start, end, store, days)
                whole = analytics.dormant_members(period, store, days, rolled=False)
                assert analytics.dormant_members(period, store, days) == whole
                assert pages(lambda after, p=period, s=store, d=days:
                             analytics.dormant_members(p, s, d, limit=3, after=after)) == whole
        for at in EXPIRING:
            for store in (None, *STORES):
                assert points_reports.expiring(ZONE_RULES, at, store) == \
                    points_reports.expiring(ZONE_RULES, at, store, rolled=False), (at, store)
    # The tier window kept by the catch-ups (moved to each period's ``to``, so read as kept),
    # moved away from it (read from the nearest kept window and the days between), and kept
    # at the month start that is ``to`` (most of the periods end on one).
    for (start, end), today in itertools.product([*PERIODS, LATE], (-1, -40, 35)):
        period = Period(start, end, ZONE_RULES.zone)
        rollup.catch_up(db, ZONE_RULES.zone, today=end + timedelta(days=today))
        with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
            for store in (None, *STORES):
                assert analytics.near_tier(NEAR_RULES, period, store) == \
                    analytics.near_tier(NEAR_RULES, period, store, rolled=False)
    with db.bind_ctx(MODELS + HQ_MODELS), snapshot(db):
        for start, end in PERIODS:
            period = Period(start, end, ZONE_RULES.zone)
            for by, store in itertools.product(points_reports.BY, (None, "S001", "HQ")):
                assert points_reports.points_flow(ZONE_RULES, period, by, store) == \
                    points_reports.points_flow(ZONE_RULES, period, by, store, rolled=False)
            assert points_reports.settlement(ZONE_RULES, period) == \
                points_reports.settlement(ZONE_RULES, period, rolled=False)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=40))
def test_the_roll_ups_equal_the_reference_whatever_the_catch_ups(hq: Database,
                                                                  steps: list[tuple]) -> None:
    play(Writer(hq), steps)
    compare(hq)
    assert_rebuilt_equal(hq)


def rolled_rows(db: Database) -> dict[str, list[tuple]]:
    """Every roll-up's rows, sorted (a lot day's points that came to nothing left out: only
    catch-ups keep those)."""
    found = {}
    for table in rollup.TABLES:
        rows = sorted(tuple(row) for row in db.execute_sql(f"SELECT * FROM {table}").fetchall())
        found[table] = [row for row in rows if table != "agg_lot_day" or row[-1]]
    return found


def assert_rebuilt_equal(db: Database) -> None:
    """The roll-ups kept by catch-ups equal those rolled up again from the ledger."""
    today = date(2027, 3, 1)
    rollup.catch_up(db, ZONE_RULES.zone, today=today)
    kept = rolled_rows(db)
    db.execute_sql("UPDATE agg_state SET value = 'again' WHERE key = 'version'")
    assert rollup.catch_up(db, ZONE_RULES.zone, today=today).rebuilt
    assert rolled_rows(db) == kept


def test_the_lots_left_by_expiry_day(hq: Database) -> None:
    """``expiring`` from the roll-up: a lot expiring at a local midnight is in the band ending
    then, not the next; a lot earned on an untrusted clock counts from the ledger until dated,
    then from the roll-up at its new expiry; redemptions and restores move what is left."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    for _ in range(4):  # lots 0-3: a year on, midnight a year and a day on, a year, undated
        writer.register("S001", T0_US + 8 * 3_600_000_000)  # 08:00 local, 2 October 2026
    rollup.catch_up(hq, zone)

    def both(at: date) -> list[int]:
        rollup.catch_up(hq, zone)
        with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
            rolled = points_reports.expiring(ZONE_RULES, at, None)
            assert rolled == points_reports.expiring(ZONE_RULES, at, None, rolled=False)
        return [figures["points"] for figures in rolled["chain"].values()]

    # Lots 0, 2 and 3 expire at 08:00 on 2 October 2027, lot 1 at midnight that night: from
    # the 3rd on, it is gone, though the 3rd is the day of its expiry instant.
    assert both(date(2027, 10, 2)) == [400, 400, 400]
    assert both(date(2027, 10, 3)) == [0, 0, 0]
    writer.redeem("S002", 0, 30, T0_US + 40 * DAY_US)
    writer.redeem("S002", 1, 100, T0_US + 40 * DAY_US)
    assert both(date(2027, 10, 2)) == [270, 270, 270]
    writer.restore("S001", 1, T0_US + 41 * DAY_US)
    writer.redeem("S001", 3, 50, T0_US + 41 * DAY_US)  # from the undated lot
    assert both(date(2027, 10, 2)) == [320, 320, 320]
    writer.date_lots(T0_US + 100 * DAY_US, move=False)  # lot 3 now expires in January 2028
    assert both(date(2027, 10, 2)) == [270, 270, 270]
    assert both(date(2027, 11, 2)) == [0, 0, 50]
    writer.date_lots(T0_US + 100 * DAY_US, move=True)  # lot 0 a day later: computed again
    assert both(date(2027, 10, 3)) == [70, 70, 70]
    assert_rebuilt_equal(hq)


def test_near_the_next_tier_from_the_kept_window(hq: Database) -> None:
    """The spend near the next tier read from the window the catch-ups keep and move: on the
    day it ends (nothing read but the members in a band), and a day on, when a sale leaves it."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    writer.register("S001", T0_US)
    member = writer.members[0]  # tier "member": silver at 5,000 fen, near from 4,500
    writer.sell("S001", member, T0_US + DAY_US + 3_600_000_000, [(1, 1000)])  # 3 Oct, 01:00
    writer.sell("S002", member, T0_US + 40 * DAY_US, [(1, 4000)])
    last = date(2027, 10, 2)  # the window after 3 October 2026 00:00 up to 3 October 2027

    def near(day: date) -> list:
        period = Period(day, day + timedelta(days=1), zone)
        with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
            found = analytics.near_tier(NEAR_RULES, period, None)
            assert found == analytics.near_tier(NEAR_RULES, period, None, rolled=False)
        return found

    rollup.catch_up(hq, zone, today=last)
    assert rollup.stored_window(hq) == rollup.kept_window(last, 12)
    assert near(last) == []  # 5,000: silver reached
    rollup.catch_up(hq, zone, today=last + timedelta(days=1))
    assert near(last + timedelta(days=1)) == []  # 4,000: the sale of 3 October left the window
    writer.sell("S001", member, T0_US + 50 * DAY_US, [(1, 500)])
    rollup.catch_up(hq, zone, today=last + timedelta(days=1))
    assert near(last + timedelta(days=1)) == [(member, "silver", 4_500)]
    assert near(last) == []  # a day back, from the kept window and that day: 5,500


def test_near_the_next_tier_at_a_kept_month_start(hq: Database) -> None:
    """A report whose ``to`` is a month start reads the window kept there: a sale at 23:59 on
    its last evening in Shanghai is in it, one at its midnight is not; a member with no sale,
    one of the top tier and one above the band are not near; a tier the rules lack counts as
    the lowest; a member's tier changed later and a sale wholly refunded later (after the
    month start) both move the answer, as the reference from the ledger says."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    for _ in range(7):
        writer.register("S001", T0_US - 30 * DAY_US)
    late, midnight, moving, refunded, idle, unknown, top = writer.members
    for which, tier in enumerate(("member", "member", "silver", "member", "member", "retired",
                                  "diamond")):
        writer.tier(which, tier)
    november = T0_US + 30 * DAY_US  # 1 November 2026, 00:00 in Shanghai (16:00 UTC)
    writer.sell("S001", late, november - 60_000_000, [(1, 4_600)])  # 23:59 on 31 October
    writer.sell("S002", midnight, november, [(1, 4_600)])  # midnight: after the window
    writer.sell("S001", moving, november - 5 * DAY_US, [(1, 18_500)])  # silver: near gold
    writer.sell("S001", refunded, november - 9 * DAY_US, [(2, 2_400)])
    writer.sell("S002", unknown, november - DAY_US, [(1, 4_700)])  # counted as the lowest
    writer.sell("S001", top, november - DAY_US, [(1, 59_000)])  # diamond: nothing after it
    today = date(2026, 12, 5)
    october = Period(date(2026, 10, 1), date(2026, 11, 1), zone)

    def near() -> tuple[list, dict]:
        rollup.catch_up(hq, zone, today=today)
        with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
            found = analytics.near_tier(NEAR_RULES, october, None)
            assert found == analytics.near_tier(NEAR_RULES, october, None, rolled=False)
            counts = analytics.near_tier_counts(NEAR_RULES, october, None)
            assert counts == analytics.near_tier_counts(NEAR_RULES, october, None,
                                                        rolled=False)
        return found, counts

    assert near() == (sorted([(late, "silver", 4_600), (refunded, "silver", 4_800),
                              (moving, "gold", 18_500), (unknown, "silver", 4_700)]),
                      {"silver": 3, "gold": 1, "diamond": 0})
    # Read from the month start's kept window, whose rows hold each member's tier.
    kept = {row[0]: row[1:] for row in hq.execute_sql(
        "SELECT member, tier, fen FROM agg_member_window WHERE end_day = "
        f"{hq.param}", (october.end_day,)).fetchall()}
    assert kept[late] == ("member", 4_600) and midnight not in kept and idle not in kept
    assert october.end_day in {w.end for w in rollup.month_windows(rollup.stored_window(hq))}
    writer.tier(2, "gold")  # `moving` reached gold: now far below diamond
    writer.refund("S002", 3, True, november + 20 * DAY_US)  # every unit, in November
    assert near() == (sorted([(late, "silver", 4_600), (unknown, "silver", 4_700)]),
                      {"silver": 2, "gold": 0, "diamond": 0})
    assert hq.execute_sql("SELECT COUNT(*) FROM agg_tier_changed").fetchone()[0] == 0
    assert_rebuilt_equal(hq)


def test_a_new_month_keeps_its_window_and_drops_the_oldest(hq: Database) -> None:
    """When the day passes into a new month the catch-up makes that month start's window from
    today's (moved by the days between) and drops the oldest, each row equal to one summed
    from the days."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    writer.register("S001", T0_US)
    for day in range(0, 120, 9):
        writer.sell(STORES[day % 2], writer.members[0], T0_US + day * DAY_US, [(1, 1_000)])
    rollup.catch_up(hq, zone, today=date(2027, 1, 30))
    before = {w.end for w in rollup.month_windows(rollup.stored_window(hq))}
    rollup.catch_up(hq, zone, today=date(2027, 2, 1))
    after = rollup.month_windows(rollup.stored_window(hq))
    assert len(after) == rollup.MONTH_STARTS and {w.end for w in after} != before
    ends = {row[0] for row in hq.execute_sql("SELECT end_day FROM agg_member_window")}
    assert ends <= {w.end for w in after}
    for window in after:
        summed = hq.execute_sql(
            f"SELECT COALESCE(SUM(fen), 0) FROM agg_member_day WHERE store = '' "
            f"AND day >= {hq.param} AND day < {hq.param}", (window.since, window.end)).fetchone()
        kept = hq.execute_sql(f"SELECT COALESCE(SUM(fen), 0) FROM agg_member_window "
                              f"WHERE end_day = {hq.param}", (window.end,)).fetchone()
        assert int(kept[0]) == int(summed[0]) > 0
    assert_rebuilt_equal(hq)


def test_migration_20_passes_over_a_database_that_has_it(hq: Database) -> None:
    """Run again on a database at version 20 (two processes upgrading at once), migration 20
    changes nothing: one trigger, which queues a member once for each change of its tier and
    not for a write that leaves the tier as it was."""
    again = next(m for m in migrations.history() if m.name == "v0020_tier_windows")
    for _ in range(2):
        with hq.atomic():
            again.run(hq)
    writer = Writer(hq)
    writer.register("S001", T0_US)
    writer.tier(0, "gold")
    writer.tier(0, "gold")
    with hq.bind_ctx(MODELS + HQ_MODELS), hq.atomic():
        Member.update(balance=Member.balance + 1).execute()
    assert hq.execute_sql("SELECT member FROM agg_tier_changed").fetchall() == [
        (writer.members[0],)]
    rollup.catch_up(hq, ZONE_RULES.zone)
    assert hq.execute_sql("SELECT COUNT(*) FROM agg_tier_changed").fetchone()[0] == 0


def test_a_later_refund_of_every_unit_takes_the_sale_out(hq: Database) -> None:
    """Rolled up with its sale counted, a sale wholly refunded weeks later leaves every figure:
    its member is no purchaser, no longer has a sale, and the refund's store changes nothing."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    writer.register("S001", T0_US)
    writer.sell("S001", writer.members[0], T0_US + DAY_US, [(2, 1000)])
    rollup.catch_up(hq, zone)
    october = Period(date(2026, 10, 1), date(2026, 11, 1), zone)
    with hq.bind_ctx(MODELS + HQ_MODELS):
        assert analytics.buyers(october, "S001").purchasers == 1
    writer.refund("S002", 0, True, T0_US + 40 * DAY_US)
    assert rollup.catch_up(hq, zone).members == 1
    with hq.bind_ctx(MODELS + HQ_MODELS):
        found = analytics.buyers(october, "S001")
        assert (found.purchasers, found.with_sale, found.new) == (0, 0, 0)
        assert analytics.buyers(october) == analytics.buyers(october, rolled=False)
    compare(hq)


def test_a_member_without_sales_and_another_zone_rebuild(hq: Database) -> None:
    """A member who never bought is in no roll-up (a buyer has a day at the store and in the
    chain, store ''); rolling up for another zone rebuilds every roll-up in that zone's days
    (in UTC, 16:00 UTC on 1 October is still the 1st)."""
    writer = Writer(hq)
    writer.register("S001", T0_US)
    writer.register("S002", T0_US)
    never, bought = writer.members
    writer.sell("S002", bought, T0_US, [(1, 5000)])  # midnight of 2 October in Shanghai
    rollup.catch_up(hq, ZONE_RULES.zone)

    def days() -> list[tuple]:
        return hq.execute_sql("SELECT member, store, day FROM agg_member_day WHERE member IN "
                              f"('{never}', '{bought}') ORDER BY store").fetchall()

    def number(day: date) -> int:
        return (day - date(1970, 1, 1)).days

    assert days() == [(bought, store, number(date(2026, 10, 2))) for store in ("", "S002")]
    assert rollup.catch_up(hq, ZoneInfo("UTC")).rebuilt
    assert days() == [(bought, store, number(date(2026, 10, 1))) for store in ("", "S002")]
    assert rollup.catch_up(hq, ZONE_RULES.zone).rebuilt
    assert days() == [(bought, store, number(date(2026, 10, 2))) for store in ("", "S002")]
    compare(hq)


def local(month: int, day: int, minutes: int = 0) -> int:
    """µs of ``minutes`` after midnight (Shanghai) of the day in 2026."""
    return T0_US + (date(2026, month, day) - date(2026, 10, 2)).days * DAY_US \
        + minutes * 60_000_000


def test_a_month_to_date_reads_the_month_rows(hq: Database) -> None:
    """A month to a day after which the month has no member sale yet (the dashboard's last
    month) reads each member's month row; a month that goes on past ``to``, and any other
    period, groups its days: the same figures as the ledger's either way, with a sale at 23:59
    and one at midnight on the period's last edge, a sale wholly refunded, a member whose month
    goes on past ``to`` and one who never bought."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    for store in ("S001", "S001", "S002", "S002"):
        writer.register(store, local(9, 1))
    a, b, c, _never = writer.members
    writer.sell("S001", a, local(9, 20, 600), [(1, 1000)])
    writer.sell("S001", a, local(10, 5, 600), [(1, 1000)])
    writer.sell("S002", a, local(10, 12, 600), [(2, 250)])
    writer.sell("S001", a, local(10, 25, 600), [(1, 5000)])  # A's October goes on past the 20th
    writer.sell("S001", a, local(11, 3, 600), [(1, 1000)])
    writer.sell("S002", b, local(10, 3, 23 * 60 + 59), [(1, 1000)])  # 23:59 on the 3rd
    writer.sell("S002", b, local(10, 8, 600), [(3, 250)])
    writer.refund("S002", len(writer.sales) - 1, True, local(10, 9, 600))  # wholly refunded
    writer.sell("S001", c, local(10, 19, 23 * 60 + 59), [(1, 250)])  # the last minute in
    writer.sell("S001", c, local(10, 20), [(1, 250)])  # midnight: the first one out
    rollup.catch_up(hq, zone)
    periods = [(date(2026, 10, 1), date(2026, 10, 20)), (date(2026, 9, 15), date(2026, 10, 20)),
               (date(2026, 9, 15), date(2026, 11, 10)), (date(2026, 10, 10), date(2026, 10, 20)),
               (date(2026, 10, 2), date(2026, 11, 1)), (date(2026, 11, 1), date(2026, 11, 10)),
               (date(2026, 9, 1), date(2026, 12, 1))]  # three whole months: A in each
    with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
        def reads_months(period: Period, store: str | None = None) -> bool:
            sql, _ = analytics_sql.member_figures(hq, period.start_day, period.end_day, store,
                                                  period.month_days)
            return "agg_member_month" in sql

        to_date = Period(date(2026, 11, 1), date(2026, 11, 10), zone)  # nothing after the 3rd
        assert reads_months(to_date) and reads_months(to_date, "S001")
        first = Period(*periods[0], zone)
        assert not reads_months(first)  # October goes on: C at midnight, A on the 25th
        assert reads_months(Period(date(2026, 10, 1), date(2026, 10, 20), zone), "S002")
        found = analytics.buyers(first)
        assert (found.purchasers, found.repeat) == (3, 1)  # A twice; B once (the 8th refunded)
        for (start, end), store in itertools.product(periods, (None, *STORES)):
            period = Period(start, end, zone)
            assert analytics.buyers(period, store, 30) == analytics.buyers(
                period, store, 30, rolled=False), (start, end, store)
            assert analytics.analytics(NEAR_RULES, period, store) == analytics.analytics(
                NEAR_RULES, period, store, rolled=False), (start, end, store)


def test_any_period_reads_each_purchaser_s_first_day_as_the_ledger_counts(
        hq: Database) -> None:
    """A period neither a calendar month nor a month to date reads each purchaser's first day
    in it (the row whose previous day is before the period) and groups only the later days of
    the members who have some: the same figures as the ledger's (``rolled=False``) over odd
    periods, with sales at 23:59 and at midnight on both edges (Shanghai), a member's earlier
    day wholly refunded after a later one (its later row then follows a day before the
    period), a unit refunded, two days at two stores, a day with two sales, a member whose
    only sale is refunded and one who never bought."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    for store in ("S001", "S001", "S002", "S002", "S001", "S002"):
        writer.register(store, local(9, 1))
    a, b, c, d, e, _never = writer.members
    writer.sell("S001", a, local(10, 14, 23 * 60 + 59), [(1, 1000)])  # the eve of the 15th
    writer.sell("S001", a, local(10, 15), [(1, 1000)])  # midnight: the first one in
    writer.sell("S002", a, local(10, 20, 600), [(2, 250)])
    writer.sell("S001", a, local(10, 20, 900), [(1, 5000)])  # a day with two sales
    writer.sell("S001", a, local(11, 14, 23 * 60 + 59), [(1, 250)])  # the last minute in
    writer.sell("S002", a, local(11, 15), [(1, 250)])  # midnight: the first one out
    writer.sell("S002", b, local(10, 10, 600), [(1, 1000)])
    writer.sell("S002", b, local(10, 16, 600), [(3, 250)])
    writer.sell("S002", b, local(11, 2, 600), [(1, 5000)])
    writer.refund("S002", len(writer.sales) - 2, True, local(11, 20, 600))  # B's 16th: all
    writer.sell("S001", c, local(10, 30, 600), [(2, 1000)])
    writer.refund("S001", len(writer.sales) - 1, False, local(11, 1, 600))  # a unit back
    writer.sell("S002", d, local(10, 18, 600), [(1, 1000)])
    writer.refund("S002", len(writer.sales) - 1, True, local(10, 19, 600))  # D's only sale
    writer.sell("S001", e, local(9, 28, 600), [(1, 1000)])
    writer.sell("S002", e, local(11, 10, 600), [(1, 250)])
    rollup.catch_up(hq, zone)
    periods = [(date(2026, 10, 15), date(2026, 11, 15)), (date(2026, 10, 16), date(2026, 11, 3)),
               (date(2026, 10, 20), date(2026, 10, 21)), (date(2026, 9, 28), date(2026, 11, 11)),
               (date(2026, 10, 15), date(2026, 10, 20)), (date(2026, 11, 14), date(2026, 11, 16)),
               (date(2026, 9, 29), date(2026, 10, 15))]
    thresholds = Thresholds((1, 7, 30, 60), (2, 3, 4, 5), (500, 1000, 5000, 20000))
    with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
        mid = Period(*periods[0], zone)
        sql, _ = analytics_sql.member_figures(hq, mid.start_day, mid.end_day, None,
                                              mid.month_days, mid.start_us)
        assert "agg_member_month" not in sql and "prev_us" in sql  # the first days' path
        found = analytics.buyers(mid)
        # A: the 15th, the 20th and 14 November; B: 2 November alone (its 16th wholly
        # refunded: 2 November's row follows the 10th again); C: the 30th; E: 10 November;
        # D none, its one sale refunded.
        assert (found.purchasers, found.repeat) == (4, 1)
        for (start, end), store in itertools.product(periods, (None, *STORES)):
            period = Period(start, end, zone)
            assert analytics.buyers(period, store, 30, thresholds) == analytics.buyers(
                period, store, 30, thresholds, rolled=False), (start, end, store)
            assert analytics.analytics(NEAR_RULES, period, store, 30, thresholds) == \
                analytics.analytics(NEAR_RULES, period, store, 30, thresholds,
                                    rolled=False), (start, end, store)


def test_near_the_next_tier_leaves_out_the_window_s_first_instant(hq: Database) -> None:
    """The tier window is after its start: a sale at the very midnight it starts on is not in
    it, though the roll-up's day holds it."""
    writer = Writer(hq)
    writer.register("S001", T0_US)  # a member (tier "member"): silver at 5,000 fen
    member = writer.members[0]
    start = T0_US + 31 * DAY_US  # midnight of 2 November 2026 in Shanghai
    writer.sell("S001", member, start, [(1, 1000)])
    writer.sell("S001", member, start + 60_000_000, [(1, 1000), (3, 1000)])  # 4,000 in all
    writer.sell("S002", member, start + DAY_US, [(1, 250), (1, 250)])  # 4,500: near
    rollup.catch_up(hq, ZONE_RULES.zone)
    period = Period(*LATE, ZONE_RULES.zone)
    with hq.bind_ctx(MODELS + HQ_MODELS):
        near = analytics.near_tier(NEAR_RULES, period, None)
        assert near == analytics.near_tier(NEAR_RULES, period, None, rolled=False)
        assert (member, "silver", 4_500) in near


def test_the_command_rolls_up_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`posterm-hq rollup --db` runs one catch-up; a report then finds nothing left to read."""
    url = str(tmp_path / "hq.db")
    db = open_hq_database(url)
    writer = Writer(db)
    writer.register("S001", T0_US)
    writer.sell("S001", writer.members[0], T0_US, [(1, 5000)])
    assert main(["rollup", "--db", url, "--rules", str(RULES)]) == 0
    assert db.execute_sql("SELECT member, store FROM agg_member ORDER BY store").fetchall() == [
        (writer.members[0], ""), (writer.members[0], "S001")]
    assert rollup.catch_up(db, ZONE_RULES.zone).spans == 0
    db.close()


def test_a_day_leaves_the_window_where_the_definition_says() -> None:
    """``rollup.leaves``: a day is in the windows ending from the day after it up to its end,
    and in no other, for every day of four years (29 February, months of 28 to 31 days) and
    windows of 1, 12 and 13 months, as the window's definition (its start ``months`` back from
    its end, the rules' calendar arithmetic) says."""
    first = (date(2023, 12, 1) - rollup.EPOCH).days
    last = (date(2028, 3, 31) - rollup.EPOCH).days
    for months in (1, 12, 13):
        found = dict(rollup.leaves(first, last, months))
        for end in range(first + 1, last + 400):
            since = (rollup._months_back(rollup.EPOCH + timedelta(days=end), months)
                     - rollup.EPOCH).days
            for day in range(max(first, since - 3), min(last, end + 2) + 1):
                assert (day + 1 <= end < found[day]) == (since <= day < end), (months, day, end)


def test_near_the_next_tier_at_any_to_from_the_runs(hq: Database) -> None:
    """A ``to`` that is neither today nor a kept month start reads the members' runs of
    ``agg_member_span`` (HQ migration 28) as they are, nothing moved: each day of two months
    about a sale's entry into the window and its leaving a year later, with Shanghai's
    midnight between a sale at 23:59 and one at 00:00, gives the reference's members; and a
    member's runs hold its spend only where it is above 0, at most two a day with a sale."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    for _ in range(3):
        writer.register("S001", T0_US - 30 * DAY_US)
    evening, midnight, silver = writer.members
    for which, tier in enumerate(("member", "member", "silver")):
        writer.tier(which, tier)
    start = T0_US + 14 * DAY_US  # 16 October 2026, 00:00 in Shanghai
    writer.sell("S001", evening, start - 60_000_000, [(1, 2_300)])  # 23:59 on 15 October
    writer.sell("S002", evening, start + 3 * DAY_US + 43_200_000_000, [(1, 2_300)])  # 19th
    writer.sell("S002", midnight, start, [(1, 4_700)])  # 00:00 on 16 October
    writer.sell("S001", silver, start + 6 * 3_600_000_000, [(1, 18_100)])  # near gold
    writer.sell("S001", silver, start + DAY_US - 1, [(1, 100)])  # 23:59:59.999999: 18,200
    rollup.catch_up(hq, zone, today=date(2026, 12, 20))
    assert rollup.spans_kept(hq) == 12
    kept = {w.end for w in rollup.month_windows(rollup.stored_window(hq))}
    runs = hq.execute_sql("SELECT member, from_end, to_end, fen FROM agg_member_span "
                          "ORDER BY member, from_end").fetchall()
    assert all(fen > 0 for *_, fen in runs)
    assert len([row for row in runs if row[0] == midnight]) == 1
    ends = [date(2026, 10, 10) + timedelta(days=n) for n in range(30)]
    ends += [date(2027, 10, 10) + timedelta(days=n) for n in range(30)]
    seen = set()
    for end in ends:
        period = Period(end - timedelta(days=7), end, zone)
        assert period.end_day not in kept or end.day == 1
        with hq.bind_ctx(MODELS + HQ_MODELS), snapshot(hq):
            found = analytics.near_tier(NEAR_RULES, period, None)
            assert found == analytics.near_tier(NEAR_RULES, period, None, rolled=False), end
            for store in STORES:
                assert analytics.near_tier_counts(NEAR_RULES, period, store) == \
                    analytics.near_tier_counts(NEAR_RULES, period, store, rolled=False)
        seen.update((end, member) for member, *_ in found)
    # The midnight sale is in the windows ending from the 17th (the 16th their last day) to
    # the 15th a year on: the window ending on the 16th is after that midnight, its first
    # instant (counted on the run's day, taken off as a sale at the window's start).
    assert (date(2026, 10, 16), midnight) not in seen
    assert (date(2026, 10, 17), midnight) in seen
    assert (date(2027, 10, 15), midnight) in seen and (date(2027, 10, 16), midnight) not in seen
    assert (date(2026, 10, 19), evening) not in seen  # 2,300 until the 19th's sale is in
    assert (date(2026, 10, 20), evening) in seen
    assert (date(2027, 10, 15), evening) in seen and (date(2027, 10, 16), evening) not in seen
    assert (date(2026, 10, 17), silver) in seen
    assert_rebuilt_equal(hq)


def test_the_runs_are_built_once_for_a_database_rolled_up_before(hq: Database) -> None:
    """A database rolled up by the code before HQ migration 28 (no runs, no ``spans`` state)
    gets every member's runs from its ``agg_member_day`` rows at the next catch-up, without
    rolling the rest up again; another tier window builds them again."""
    writer = Writer(hq)
    writer.register("S001", T0_US)
    member = writer.members[0]
    writer.sell("S001", member, T0_US + DAY_US, [(1, 4_600)])
    rollup.catch_up(hq, ZONE_RULES.zone, today=date(2026, 12, 20))
    built = hq.execute_sql("SELECT member, from_end, to_end, fen, tier FROM agg_member_span "
                           "ORDER BY member, from_end").fetchall()
    assert built
    hq.execute_sql("DELETE FROM agg_member_span")
    hq.execute_sql("DELETE FROM agg_state WHERE key = 'spans'")
    with hq.bind_ctx(MODELS + HQ_MODELS):  # as before: from the kept windows and the days
        period = Period(date(2026, 11, 20), date(2026, 12, 12), ZONE_RULES.zone)
        assert analytics.near_tier(NEAR_RULES, period, None) == [(member, "silver", 4_600)]
    caught = rollup.catch_up(hq, ZONE_RULES.zone, today=date(2026, 12, 20))
    assert not caught.rebuilt and caught.spans == 0
    assert hq.execute_sql("SELECT member, from_end, to_end, fen, tier FROM agg_member_span "
                          "ORDER BY member, from_end").fetchall() == built
    rollup.catch_up(hq, ZONE_RULES.zone, 1, today=date(2026, 12, 20))
    assert rollup.spans_kept(hq) == 1
    assert hq.execute_sql("SELECT MAX(to_end) - MIN(from_end) FROM agg_member_span"
                          ).fetchone()[0] <= 31


def test_a_new_sale_adds_its_lines_without_reading_its_day_again(hq: Database) -> None:
    """A catch-up adds a new sale with no refund to its day's product rows (the least name
    kept), so a busy day is not read again each time; a day with a new refund is computed
    again from its sales. Shown by a row altered in between: kept by the adding, put right by
    the computing; the rows then equal those rolled up again from the ledger."""
    writer = Writer(hq)
    zone = ZONE_RULES.zone
    writer.register("S001", T0_US)
    member = writer.members[0]
    writer.sell("S001", member, T0_US + 3_600_000_000, [(2, 700)])  # SKU0, "商品700S001"
    rollup.catch_up(hq, zone)
    row = "SELECT name, qty, fen FROM agg_sku_day WHERE sku = 'SKU0' AND store = 'S001'"
    assert hq.execute_sql(row).fetchall() == [("商品700S001", 2, 1_400)]
    hq.execute_sql("UPDATE agg_sku_day SET qty = qty + 1000 WHERE sku = 'SKU0'")
    writer.sell("S001", member, T0_US + 7_200_000_000, [(2, 7)])  # SKU0, "商品7S001" (more)
    rollup.catch_up(hq, zone)
    assert hq.execute_sql(row).fetchall() == [("商品700S001", 1_004, 1_414)]
    writer.sell("S001", member, T0_US + 9_000_000_000, [(2, 14)])  # "商品14S001": less
    writer.refund("S001", 2, True, T0_US + 9_100_000_000)  # that sale, in the same catch-up
    rollup.catch_up(hq, zone)
    assert hq.execute_sql(row).fetchall() == [("商品700S001", 4, 1_414)]  # computed again
    writer.sell("S001", member, T0_US + 9_500_000_000, [(2, 14)])  # "商品14S001": less
    rollup.catch_up(hq, zone)
    assert hq.execute_sql(row).fetchall() == [("商品14S001", 6, 1_442)]
    assert_rebuilt_equal(hq)


def test_a_catch_up_on_postgresql_plans_from_what_it_reads(postgres) -> None:
    """PostgreSQL: a catch-up runs without JIT (compiling its statements took 0.8 s each at a
    million members for a few thousand rows) and names the spans' lowest and highest sequence
    numbers as constants wherever it joins them (the planner estimates a thousand rows instead
    of a ninth of the table, and probes the lots instead of hashing all of them)."""
    from tests.hq.test_postgres_collector import fresh_database

    db = open_hq_database(fresh_database(postgres))
    try:
        writer = Writer(db)
        writer.register("S001", T0_US)
        rollup.catch_up(db, ZONE_RULES.zone)
        writer.sell("S001", writer.members[0], T0_US + DAY_US, [(1, 4_600)])
        seen: list[tuple[str, str]] = []
        original = db.execute_sql

        def spy(sql: str, params: object = None, *args: object, **kwargs: object) -> object:
            if "agg_span sp" in sql:
                seen.append((sql, original("SHOW jit").fetchone()[0]))
            return original(sql, params, *args, **kwargs)

        db.execute_sql = spy  # type: ignore[method-assign]
        try:
            rollup.catch_up(db, ZONE_RULES.zone)
        finally:
            del db.execute_sql
        assert len(seen) >= 8
        for sql, jit in seen:
            assert jit == "off"
            joined = sql.count("agg_span sp ON")
            assert joined and len(re.findall(r"\.seq BETWEEN \d+ AND \d+", sql)) == joined, sql
    finally:
        db.close()
