"""`posterm-hq demo --db URL`: a chain with three months of history, the same on every run.

    posterm-hq demo --db hq.db --card-key-file card.key [--rules rules.toml]

Stores S001-S003 and their terminals run the chain's rules (by default
``../shared/examples/rules.toml``) from 1 September to 30 November 2026: a few hundred members with
Chinese names register across the stores, shop at home and now and then at another store, earn,
redeem, and bring goods back. Every record is made by the real code: each terminal is the
terminal's own :class:`LedgerStore` (on a scratch SQLite file), and its events reach HQ's chain
ledger through :meth:`ChainLedger.apply`, the collectors' path, in the order they happened.

Everything is drawn from one seeded random generator and dated by a fixed calendar, so two runs
make the same members, sales, entries and balances (the record ids are UUIDs minted as always).
The demo also adds the console account ``admin`` (password :data:`ADMIN_PASSWORD`) when the
console is installed and the account does not exist yet. It refuses a database that already
holds members.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from terminal.daemon.sim.demo import demo_rules
from terminal.hq.bundles import read_toml
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.models import TerminalSeen
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.binding import bound_call
from terminal.loyalty.store.models import Member, Outbox
from terminal.protocol.messages import Event

SEED = 20260901
FIRST_DAY, LAST_DAY = date(2026, 9, 1), date(2026, 11, 30)
TERMINALS = (("S001", "T01"), ("S001", "T02"), ("S002", "T01"), ("S003", "T01"))
ADMIN, ADMIN_PASSWORD = "admin", "posterm-demo"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
         "涛", "明", "超", "秀英", "华", "平", "刚", "桂英", "玉兰", "建华", "晓东", "海燕",
         "文", "欣怡", "子涵", "浩然", "雨桐", "思远", "佳怡", "宇轩", "梓萱", "志强")
# What the demo tills sell: (sku, name, category, price in fen).
GOODS = (
    ("6901234567892", "可口可乐 Coca-Cola", "drinks", 350),
    ("6900000000014", "草莓 Strawberries", "fresh", 1250),
    ("6900000000021", "洗衣液 Detergent", "household", 4000),
    ("6900000000038", "香烟 Cigarettes", "tobacco", 2500),
    ("1001", "面包 Bread", "bakery", 800),
    ("1002", "牛奶 Milk", "dairy", 650),
    ("1003", "大米 5kg Rice", "grocery", 4590),
    ("1004", "鸡蛋 Eggs x10", "fresh", 1580),
    ("1005", "纸巾 Tissues", "household", 1290),
    ("1006", "苹果 Apples", "fresh", 990),
)


@dataclass(frozen=True)
class DemoMember:
    card: str
    name: str
    phone: str
    birthday: date | None
    home: tuple[str, str]  # the terminal they register at
    joins: date


@dataclass
class Summary:
    members: int = 0
    sales: int = 0
    member_sales: int = 0
    redemptions: int = 0
    refunds: int = 0
    events: dict[str, int] = field(default_factory=dict)

    def counted(self, outcome: str) -> None:
        self.events[outcome] = self.events.get(outcome, 0) + 1


class DemoTill:
    """One terminal of the demo: its own ledger store, the cards it knows."""

    def __init__(self, directory: Path, rules: Rules, card_key: bytes,
                 ident: tuple[str, str]) -> None:
        self.ident = ident
        self.store = LedgerStore.open(directory / f"{ident[0]}-{ident[1]}.db", rules, card_key,
                                      Identity(*ident))
        self.known: set[str] = set()
        self.sales: list[tuple[str, list[Line]]] = []  # member sales, for refunds
        self.sent = 0  # outbox seq already handed to HQ

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return bound_call(self.store.db, lambda: fn(*args, **kwargs))

    def new_events(self) -> list[Event]:
        rows = self.call(lambda: list(Outbox.select(Outbox.seq, Outbox.payload)
                                      .where(Outbox.seq > self.sent).order_by(Outbox.seq)
                                      .tuples()))
        if rows:
            self.sent = rows[-1][0]
        return [Event.from_json(payload) for _, payload in rows]


def demo_members(rng: random.Random, count: int) -> list[DemoMember]:
    days = (LAST_DAY - FIRST_DAY).days
    members = []
    for number in range(count):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)) \
            if rng.random() < 0.6 else None
        # Half join in the first fortnight (the chain's launch), the rest over the period.
        joins = FIRST_DAY + timedelta(days=rng.randint(0, 13) if number % 2 == 0
                                      else rng.randint(0, days - 7))
        members.append(DemoMember(f"8100{number:06d}", name, f"139{rng.randint(0, 10**8 - 1):08d}",
                                  birthday, rng.choice(TERMINALS), joins))
    return members


def _moments(rules: Rules, day: date, count: int, rng: random.Random) -> Iterator[Moment]:
    """``count`` times of ``day`` in opening hours (08:00-21:00 in the programme's zone)."""
    opening = datetime.combine(day, time(8), rules.zone)
    for minute in sorted(rng.randint(0, 13 * 60 - 1) for _ in range(count)):
        yield Moment((opening + timedelta(minutes=minute, seconds=rng.randint(0, 59)))
                     .astimezone(UTC))


class Demo:
    def __init__(self, ledger: ChainLedger, rules: Rules, card_key: bytes, scratch: Path,
                 members: int, sales_per_day: int, seed: int) -> None:
        self.ledger, self.rules, self.card_key = ledger, rules, card_key
        self.rng = random.Random(seed)
        self.members = demo_members(self.rng, members)
        self.tills = {ident: DemoTill(scratch, rules, card_key, ident) for ident in TERMINALS}
        self.sales_per_day = sales_per_day
        self.summary = Summary()

    def close(self) -> None:
        for till in self.tills.values():
            till.store.close()

    def run(self) -> Summary:
        day = FIRST_DAY
        while day <= LAST_DAY:
            self._day(day)
            self._to_hq()
            day += timedelta(days=1)
        self._fleet()
        return self.summary

    def _day(self, day: date) -> None:
        joined = [m for m in self.members if m.joins < day]
        for member in (m for m in self.members if m.joins == day):
            till = self.tills[member.home]
            moment = next(_moments(self.rules, day, 1, self.rng))
            till.call(till.store.register, Registration(
                card=member.card, name=member.name, phone=member.phone,
                birthday=member.birthday, operator="cashier"), moment)
            till.known.add(member.card)
            self.summary.members += 1
        for ident, till in self.tills.items():
            count = self.sales_per_day + self.rng.randint(-2, 2)
            for moment in _moments(self.rules, day, count, self.rng):
                self._sale(till, ident, joined, moment)
            if till.sales and self.rng.random() < 0.15:
                self._refund(till, next(_moments(self.rules, day, 1, self.rng)))

    def _sale(self, till: DemoTill, ident: tuple[str, str], joined: list[DemoMember],
              moment: Moment) -> None:
        lines = [Line(sku, self.rng.randint(1, 3), price, name, category)
                 for sku, name, category, price in
                 self.rng.sample(GOODS, self.rng.randint(1, 4))]
        card = None
        if joined and self.rng.random() < 0.7:
            home = [m for m in joined if m.home[0] == ident[0]]
            pool = home if home and self.rng.random() < 0.85 else joined
            card = self.rng.choice(pool).card
            # Identified online, as a till does: HQ's record (its tier) first.
            hashed = card_hash(self.card_key, card)
            tier = self.ledger.thread.call(lambda: Member.get(Member.card_hash == hashed).tier)
            if card not in till.known:
                till.call(till.store.import_member, card, tier, moment, operator="cashier")
                till.known.add(card)
            else:
                till.call(till.store.note_hq_tier, card, tier, moment)
        sale_id = f"{ident[0]}-{ident[1]}-{self.summary.sales + 1:06d}"
        request = SaleRequest(sale_id, lines, card=card, operator="cashier")
        redeem = 0
        if card is not None and self.rng.random() < 0.2:
            # Half the most the till allows: HQ prices the sale with the chain-wide tier, whose
            # discount may be larger than the till's (docs/sync.md, "Limits today"), and a
            # redemption at the till's limit would then break HQ's max_percent_of_sale.
            quote = till.call(till.store.quote, request, moment)
            step = self.rules.redeem.step_points
            redeem = quote.max_redeem_points // 2 // step * step
            if redeem < self.rules.redeem.min_points:
                redeem = 0
        try:
            result = till.call(till.store.sale, SaleRequest(
                sale_id, lines, card=card, redeem_points=redeem, operator="cashier"), moment)
        except Refused:  # the redemption broke a rule (a day cap): sell without it
            result = till.call(till.store.sale, request, moment)
        self.summary.sales += 1
        if card is not None:
            self.summary.member_sales += 1
            self.summary.redemptions += bool(result.points_redeemed)
            till.sales.append((result.id, lines))

    def _refund(self, till: DemoTill, moment: Moment) -> None:
        sale_id, lines = till.sales.pop(self.rng.randrange(len(till.sales)))
        part = None if self.rng.random() < 0.5 else [(lines[0].sku, 1)]
        till.call(till.store.refund, sale_id, part, moment, operator="manager")
        self.summary.refunds += 1

    def _to_hq(self) -> None:
        """Every event the tills wrote, applied at HQ in the order they happened; one that
        needs another first (a member's registration) comes again, as on the wire."""
        waiting = sorted((event for till in self.tills.values() for event in till.new_events()),
                         key=lambda e: (e.wall_time, e.store, e.terminal, e.seq))
        while waiting:
            outcomes = self.ledger.thread.call(self.ledger.apply, waiting)
            deferred = [o.event for o in outcomes if not o.ack]
            for outcome in outcomes:
                if outcome.ack:
                    self.summary.counted(outcome.result)
            if len(deferred) == len(waiting):
                raise RuntimeError(f"demo: HQ cannot apply {len(deferred)} events: "
                                   f"{outcomes[0].detail}")
            waiting = deferred

    def _fleet(self) -> None:
        seen = to_micros(datetime.combine(LAST_DAY, time(21), self.rules.zone))

        def record() -> None:
            for store, terminal in TERMINALS:
                TerminalSeen.insert(
                    store=store, terminal=terminal, online=False, epoch=1, version="demo",
                    rule_version=0, backlog=0,
                    devices=json.dumps({"printer": "ok", "reader": "present"}),
                    last_seen_us=seen).on_conflict_ignore().execute()
        self.ledger.thread.call(record)


def add_admin(db_url: str) -> bool:
    """The console's demo account, when the console is installed; False if it exists."""
    from terminal.hq.console import accounts
    from terminal.hq.console.db import ConsoleDb
    from terminal.hq.console.models import ConsoleUser

    console = ConsoleDb(db_url)
    try:
        if console.call(lambda: ConsoleUser.get_or_none(ConsoleUser.name == ADMIN)) is not None:
            return False
        console.call(accounts.add_user, ADMIN, "admin", (), ADMIN_PASSWORD)
        return True
    finally:
        console.close()


def build_demo(db_url: str, rules: Rules, card_key: bytes, *, members: int = 300,
               sales_per_day: int = 6, seed: int = SEED) -> Summary:
    ledger = ChainLedger(open_hq_database(db_url), rules, card_key)
    try:
        if ledger.thread.call(lambda: Member.select().count()):
            raise ValueError(f"{db_url} already holds members: the demo needs an empty "
                             "database")
        # The demo tills' ledgers are scratch: in memory-backed /dev/shm where there is one,
        # their thousands of commits need not wait for the disk.
        shm = Path("/dev/shm")
        scratch_dir = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        with tempfile.TemporaryDirectory(prefix="posterm-demo-", dir=scratch_dir) as scratch:
            demo = Demo(ledger, rules, card_key, Path(scratch), members, sales_per_day, seed)
            try:
                return demo.run()
            finally:
                demo.close()
    finally:
        ledger.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL (empty)")
    parser.add_argument("--card-key-file", type=Path, required=True)
    parser.add_argument("--rules", type=Path, default=None,
                        help="the chain's rules TOML (default: the example rules)")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--sales-per-day", type=int, default=6, help="per terminal, about")


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.members <= 100_000 or not 2 <= args.sales_per_day <= 500:
        print("demo: --members is 1 to 100000, --sales-per-day 2 to 500", file=sys.stderr)
        return 2
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        card_key = args.card_key_file.read_bytes().strip()
        summary = build_demo(args.db, rules, card_key, members=args.members,
                             sales_per_day=args.sales_per_day)
    except (OSError, ValueError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"stores": sorted({store for store, _ in TERMINALS}),
                      "terminals": [f"{s}/{t}" for s, t in TERMINALS],
                      "from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat(),
                      **summary.__dict__}, ensure_ascii=False, sort_keys=True))
    try:
        added = add_admin(args.db)
    except ImportError:
        print("demo: the console is not installed (pip install -e '.[hq]'): no login made",
              file=sys.stderr)
        return 0
    if added:
        print(f"console login: {ADMIN} / {ADMIN_PASSWORD}", file=sys.stderr)
    return 0
