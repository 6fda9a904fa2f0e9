"""Fixtures for the points engine: the chain's example rules, variants of them, a store."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from terminal.loyalty import ids
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore

SH = ZoneInfo("Asia/Shanghai")
KEY = b"test-card-key-0123456789abcdef"


def at(text: str) -> datetime:
    """'2026-03-04 10:00' in Shanghai time."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


class FrozenMillisecond:
    """A clock for :func:`terminal.loyalty.ids.new_id` that never leaves one millisecond: ids
    then differ only in their random bits, as credits made within a millisecond do."""

    @staticmethod
    def time_ns() -> int:
        return 1_772_600_000_000 * 1_000_000


@pytest.fixture
def same_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every id minted in one millisecond: any order taken from ids is random."""
    monkeypatch.setattr(ids, "time", FrozenMillisecond)


@pytest.fixture(scope="session")
def rules_data(examples: Path) -> dict[str, Any]:
    with open(examples / "rules.toml", "rb") as handle:
        return tomllib.load(handle)


@pytest.fixture
def make_rules(rules_data: dict[str, Any]) -> Callable[..., Rules]:
    """Build rules from the example with changes: make_rules(lambda d: d["earn"].update(...))."""

    def build(*changes: Callable[[dict[str, Any]], None]) -> Rules:
        data = copy.deepcopy(rules_data)
        for change in changes:
            change(data)
        return Rules.from_mapping(data)

    return build


@pytest.fixture
def rules(make_rules: Callable[..., Rules]) -> Rules:
    return make_rules()


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[Rules], LedgerStore]]:
    opened: list[LedgerStore] = []

    def make(rules: Rules, name: str = "term.db") -> LedgerStore:
        store = LedgerStore.open(tmp_path / name, rules, KEY, Identity("S001", "T01"))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[Rules], LedgerStore], rules: Rules) -> LedgerStore:
    return open_store(rules)


def register(store: LedgerStore, card: str, when: str = "2026-03-02 10:00", **kw: Any) -> None:
    store.register(Registration(card=card, **kw), store.moment(at(when)))


def sell(
    store: LedgerStore,
    sale_id: str,
    lines: list[tuple[str, str, int, int]],
    card: str | None = "8000000001",
    when: str = "2026-03-02 12:00",
    redeem: int = 0,
    online: bool = True,
    trusted: bool = True,
) -> Any:
    """lines: (sku, category, qty, price_fen)."""
    req = SaleRequest(
        id=sale_id,
        card=card,
        redeem_points=redeem,
        lines=[Line(sku=s, category=c, qty=q, price_fen=p) for s, c, q, p in lines],
    )
    return store.sale(req, store.moment(at(when), trusted), online=online)
