"""A hand-made chain history: real tills (the terminal's LedgerStore) whose events reach a real
HQ ledger (ChainLedger on an SQLite file) by the collectors' path, at chosen moments."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.demo import DemoTill
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Member

CARD_KEY = bytes(range(32))
CARDS = {"wang": "6201000000000001", "li": "6201000000000019", "zhao": "6201000000000035",
         "qian": "6201000000000043", "sun": "6201000000000050", "zhou": "6201000000000068"}


class HandChain:
    def __init__(self, directory: Path, rules: Rules, url: str | None = None) -> None:
        self.url = url or str(directory / "hq.db")
        self.ledger = ChainLedger(open_hq_database(self.url), rules, CARD_KEY)
        self.rules = rules
        self.directory = directory
        self.tills: dict[str, DemoTill] = {}

    def till(self, store: str) -> DemoTill:
        if store not in self.tills:
            self.tills[store] = DemoTill(self.directory, self.rules, CARD_KEY, (store, "T01"))
        return self.tills[store]

    def at(self, text: str) -> Moment:
        return Moment(datetime.fromisoformat(text).replace(tzinfo=self.rules.zone), True)

    def register(self, store: str, who: str, when: str) -> None:
        till = self.till(store)
        till.call(till.store.register, Registration(card=CARDS[who], name=who), self.at(when))
        till.known.add(CARDS[who])
        self._to_hq(till)

    def sale(self, store: str, who: str | None, when: str, lines: list[tuple[str, int, int, str]],
             redeem: int = 0) -> str:
        till = self.till(store)
        sale_id = f"{store}-T01-{len(till.sales) + 1:04d}"
        if who is not None and CARDS[who] not in till.known:  # HQ's member, at another store
            hashed = card_hash(CARD_KEY, CARDS[who])
            tier = self.ledger.thread.call(lambda: Member.get(Member.card_hash == hashed).tier)
            till.call(till.store.import_member, CARDS[who], tier, self.at(when),
                      operator="cashier")
            till.known.add(CARDS[who])
        result: Any = till.call(till.store.sale, SaleRequest(
            sale_id, [Line(sku, qty, price, sku, category) for sku, qty, price, category in lines],
            card=CARDS[who] if who else None, redeem_points=redeem), self.at(when))
        till.sales.append((result.id, []))
        self._to_hq(till)
        return sale_id

    def refund(self, store: str, sale_id: str, when: str,
               lines: list[tuple[str, int]] | None = None) -> None:
        till = self.till(store)
        till.call(till.store.refund, sale_id, lines, self.at(when))
        self._to_hq(till)

    def _to_hq(self, till: DemoTill) -> None:
        outcomes = self.ledger.thread.call(self.ledger.apply, till.new_events())
        assert all(o.result == "applied" for o in outcomes), [o.detail for o in outcomes]

    def close(self) -> None:
        for till in self.tills.values():
            till.store.close()
        self.ledger.close()
