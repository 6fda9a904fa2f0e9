"""A small chain for the console's tests: real tills (LedgerStore on SQLite files) register
members and ring up sales in two stores, and HQ applies their real events (ChainLedger), exactly
as the collector would. Names include Chinese and hostile text."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from starlette.types import ASGIApp

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.console import accounts
from terminal.hq.console.app import build
from terminal.hq.console.db import ConsoleDb
from terminal.hq.database import open_hq_database
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.models import Outbox
from terminal.protocol.messages import Event
from tests.sync.harness import CARD_KEY, rules_data

T = TypeVar("T")

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Person:
    card: str
    name: str
    phone: str
    store: str


PEOPLE = (
    Person("7100000001", "张伟", "13800000001", "S001"),
    Person("7100000002", "张三丰", "13800000002", "S001"),
    Person("7100000003", "<script>alert(1)</script>", "13800000003", "S001"),
    Person("7100000004", "'; DROP TABLE member; --", "13800000004", "S001"),
    Person("7200000001", "李娜", "13900000001", "S002"),
    Person("7200000002", "张丽", "13900000002", "S002"),
)


@dataclass
class Chain:
    url: str
    rules: Rules
    people: tuple[Person, ...] = PEOPLE
    users: dict[str, str] = field(default_factory=dict)  # name -> role


def build_chain(directory: Path, url: str | None = None, sales_per_member: int = 3) -> Chain:
    """HQ's database at ``url`` (default: a SQLite file in ``directory``) holding the chain."""
    rules = Rules.from_mapping(rules_data())
    url = url or str(directory / "hq.db")
    at = datetime.now(UTC) - timedelta(days=40)
    events: list[Event] = []
    for store in ("S001", "S002"):
        till = LedgerStore.open(directory / f"{store}.db", rules, CARD_KEY, Identity(store, "T01"))
        for person in (p for p in PEOPLE if p.store == store):
            at += timedelta(minutes=1)
            till.register(Registration(card=person.card, name=person.name, phone=person.phone,
                                       operator="ann"), Moment(at))
            for n in range(sales_per_member):
                at += timedelta(minutes=1)
                till.sale(SaleRequest(str(uuid.uuid4()),
                                      [Line("SKU1", 1, 12800 + 100 * n, "雨伞", "")],
                                      card=person.card, operator="王小明"), Moment(at))
        with till.db.bind_ctx([Outbox]):
            events += [Event.from_json(row.payload)
                       for row in Outbox.select().order_by(Outbox.seq)]
        till.close()
    ledger = ChainLedger(open_hq_database(url), rules, CARD_KEY)
    try:
        outcomes = ledger.thread.call(ledger.apply, events)
        assert {o.result for o in outcomes} == {"applied"}, outcomes
    finally:
        ledger.close()
    return Chain(url, rules)


def add_users(chain: Chain) -> None:
    db = ConsoleDb(chain.url)
    try:
        for name, role, stores in (("admin", "admin", ()), ("svc", "service", ()),
                                   ("aud", "auditor", ()), ("mkt", "marketing", ()),
                                   ("mgr1", "store_manager", ("S001",)),
                                   ("mgr2", "store_manager", ("S002",))):
            db.call(accounts.add_user, name, role, stores, PASSWORD)
            chain.users[name] = role
    finally:
        db.close()


async def sign_in(page: Any, site: str, name: str, then: str = "/members") -> None:
    """Sign ``name`` in to the console at ``site`` in Chromium (Playwright's async API) and
    wait for the page ``then``."""
    await page.goto(f"{site}/login?next={then}")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{site}{then}")


def signed_in(site: tuple[str, Any], name: str, then: str = "/members",
              lang: str = "zh-CN") -> tuple[Any, Any]:
    """The sync twin of :func:`sign_in` (Playwright's sync API): a new browser context of a
    ``lang`` person on ``site`` (the console's URL and Chromium), ``name`` signed in from the
    login page that ``then`` sent it to, and waiting on ``then``; the context and its page."""
    url, chromium = site
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, locale=lang)
    page = context.new_page()
    page.goto(f"{url}{then}")
    assert page.url.startswith(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{then}")
    return context, page


def on_console_db(url: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on HQ's database at ``url`` through the console's own database thread (its
    models bound), as a page would run it; the connection closed after."""
    db = ConsoleDb(url)
    try:
        return db.call(fn, *args)
    finally:
        db.close()


def add_user_at(url: str, name: str, role: str) -> None:
    """One more chain-wide console user (password ``PASSWORD``) in HQ's database at ``url``."""
    on_console_db(url, accounts.add_user, name, role, (), PASSWORD)


def add_user(chain: Chain, name: str, role: str) -> None:
    """One more chain-wide user (password ``PASSWORD``)."""
    add_user_at(chain.url, name, role)
    chain.users[name] = role


def console_app(chain: Chain, *, secure_cookies: bool = True) -> ASGIApp:
    return build(chain.url, chain.rules, CARD_KEY, secure_cookies=secure_cookies)
