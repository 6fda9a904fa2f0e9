"""The ledger as the flow sees it: every store call on the ledger's one thread.

SQLite commits wait for an fsync (``synchronous=FULL``); running them on their own thread keeps
the loop free to draw the display and read the keypad. The thread
(:class:`~terminal.loyalty.store.ledger_thread.LedgerThread`) is the composition root's, shared
with the HQ link, so the ledger's writes are strictly ordered on one connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from terminal.app.hqlink import RemoteBalance
from terminal.loyalty.cards import card_hash
from terminal.loyalty.clock import Moment
from terminal.loyalty.ids import new_id
from terminal.loyalty.operations import (
    ExchangeResult,
    MemberView,
    Quote,
    RefundResult,
    Registration,
    SaleRequest,
    SaleResult,
)
from terminal.loyalty.pricing import Line
from terminal.loyalty.store import LedgerStore, eod
from terminal.loyalty.store.card_states import CardBlock, CardBlocked
from terminal.loyalty.store.ledger_store import HeldAtHq
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import Refund, Sale, SaleLine
from terminal.loyalty.store.operators import SignedIn
from terminal.loyalty.store.people import find_product

T = TypeVar("T")
Clock = Callable[[], tuple[datetime, bool]]  # (wall time with zone, whether it is trusted)


@dataclass(frozen=True)
class SoldLine:
    line_no: int
    sku: str
    name: str
    qty: int
    paid_fen: int


class LedgerGateway:
    def __init__(self, store: LedgerStore, clock: Clock, pin_key: bytes,
                 executor: LedgerThread) -> None:
        self.store = store
        self.clock = clock
        self.pin_key = pin_key  # the terminal's secret for operators' PIN hashes
        self.executor = executor  # the ledger's thread, shared with the HQ link
        identity = store.identity
        self.sale_prefix = f"{identity.store}-{identity.terminal}-"

    @classmethod
    async def open(cls, opener: Callable[[], LedgerStore], clock: Clock, pin_key: bytes,
                   executor: LedgerThread) -> LedgerGateway:
        """Open the store on the ledger's thread, so its connection lives there."""
        return cls(await executor.open(opener), clock, pin_key, executor)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await self.executor.run(function, *args)

    async def _now(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function(*args, moment, **kwargs)`` with the clock read as it runs."""
        def call() -> T:
            at, trusted = self.clock()
            return function(*args, self.store.moment(at, trusted), **kwargs)
        return await self._run(call)

    def card_hash(self, number: str) -> str:
        """The keyed hash HQ knows the card by (HqLink calls never see the number)."""
        return card_hash(self.store.card_key, number)

    async def card_block(self, card: str) -> CardBlock | None:
        """Why HQ says the card may neither earn nor redeem (frozen, retired), or None."""
        return await self._run(self.store.card_block, card)

    async def member(self, card: str) -> MemberView:
        return await self._now(self.store.member, card)

    async def member_by_phone(self, phone: str, actor: str) -> MemberView:
        return await self._now(self.store.member_by_phone, phone, actor)

    async def register(self, reg: Registration) -> MemberView:
        return await self._now(self.store.register, reg)

    async def consent(self, card: str, channel: str, granted: bool, address: str | None,
                      operator: str) -> None:
        """The member's answer to member care's question, as an event to HQ."""
        await self._now(self.store.consent, card, channel, granted, address, operator)

    async def import_member(self, card: str, remote: RemoteBalance,
                            operator: str) -> MemberView:
        """Record a member HQ knows but this ledger does not (registered at another store)."""
        return await self._now(self.store.import_member, card, remote.tier, operator=operator)

    async def quote(self, req: SaleRequest, online: bool,
                    hq_balance: int | None = None) -> Quote:
        return await self._now(self.store.quote, req, online=online, hq_balance=hq_balance)

    async def sale(self, req: SaleRequest, online: bool,
                   held_at_hq: HeldAtHq | None = None) -> SaleResult:
        def call(moment: Moment) -> SaleResult:
            self._unblocked(req.card)
            return self.store.sale(req, moment, online=online, held_at_hq=held_at_hq)
        return await self._now(call)

    def _unblocked(self, card: str | None) -> None:
        """Refuse a card HQ froze or retired: its state may have arrived after the member was
        identified, and the sale must not earn or redeem on it."""
        blocked = self.store.card_block(card) if card is not None else None
        if blocked is not None and card is not None:
            raise CardBlocked(blocked, card[-4:])

    async def refund(self, sale_id: str, lines: list[tuple[str, object]] | None, operator: str,
                     kind: str = "refund") -> RefundResult:
        """Refund or void, numbered in this terminal's own series (``S001-T01-R0001``)."""
        def call() -> RefundResult:
            at, trusted = self.clock()
            return self.store.refund(sale_id, lines, self.store.moment(at, trusted),
                                     operator=operator, kind=kind,
                                     refund_id=self._next_refund_id())
        return await self._run(call)

    def refund_id_for(self, number: int) -> str:
        """The number of this terminal's refund or void ``number``, as its receipt shows it."""
        return f"{self.sale_prefix}R{number:04d}"

    def _next_refund_id(self) -> str:
        # On the ledger thread, just before the refund is written there: no other writer.
        pattern = re.compile(re.escape(self.sale_prefix) + r"R([0-9]+)")
        last = 0
        for (refund_id,) in (Refund.select(Refund.id)
                             .where(Refund.id.startswith(f"{self.sale_prefix}R"))
                             .order_by(Refund.seq.desc()).limit(20).tuples()):
            found = pattern.fullmatch(refund_id)
            if found:
                last = max(last, int(found.group(1)))
        return self.refund_id_for(last + 1)

    async def exchange(self, card: str, sku: str, qty: int, online: bool, operator: str,
                       held_at_hq: HeldAtHq | None = None,
                       exchange_id: str | None = None) -> ExchangeResult:
        def call(moment: Moment) -> ExchangeResult:
            self._unblocked(card)
            return self.store.exchange(card, sku, qty, moment, online=online, operator=operator,
                                       held_at_hq=held_at_hq, exchange_id=exchange_id)
        return await self._now(call)

    @staticmethod
    def new_exchange_id() -> str:
        """An id for a goods exchange about to be rung up (its hold at HQ is named by it)."""
        return new_id()

    async def note_hq_tier(self, card: str, remote: RemoteBalance) -> None:
        """Record the tier HQ answered for a member this ledger holds (a floor for the monthly
        review; a higher tier applies at once)."""
        await self._now(self.store.note_hq_tier, card, remote.tier)

    async def adjust(self, card: str, points: int, reason: str, operator: str) -> MemberView:
        def call() -> MemberView:
            at, trusted = self.clock()
            return self.store.adjust(card, points, reason, operator,
                                     self.store.moment(at, trusted))
        return await self._run(call)

    async def statement(self, card: str) -> dict[str, Any]:
        return await self._now(self.store.statement, card)

    async def report(self, kind: str, operator: str) -> eod.StoredReport:
        def call() -> eod.StoredReport:
            at, trusted = self.clock()
            day = at.astimezone(self.store.rules.zone).date()
            return eod.write_report(self.store, kind, day, self.store.moment(at, trusted),
                                    operator)
        return await self._run(call)

    async def operator_known(self, number: int) -> bool:
        return await self._run(self.store.operator_known, number)

    async def sign_in(self, number: int, pin: str) -> SignedIn:
        """Operator ``number`` if ``pin`` is theirs, else ``SignInRefused`` (counted)."""
        return await self._now(self.store.sign_in, self.pin_key, number, pin)

    async def unlock_operator(self, number: int, manager: str) -> None:
        await self._now(self.store.unlock_operator, number, manager)

    async def find_product(self, code: str) -> Line | None:
        def call() -> Line | None:
            product = find_product(code)
            if product is None:
                return None
            return Line(sku=product.sku, qty=1, price_fen=product.price_fen, name=product.name,
                        category=product.category)
        return await self._run(call)

    async def sold_lines(self, sale_id: str) -> list[SoldLine] | None:
        """The lines of a recorded sale (None when this terminal has no such sale)."""
        def call() -> list[SoldLine] | None:
            if Sale.get_or_none(Sale.id == sale_id) is None:
                return None
            return [SoldLine(r.line_no, r.sku, r.name, r.qty, r.paid_fen)
                    for r in SaleLine.select().where(SaleLine.sale == sale_id)
                    .order_by(SaleLine.line_no)]
        return await self._run(call)

    def sale_id_for(self, number: int) -> str:
        """The id of this terminal's sale ``number`` (what the cashier keys for a refund)."""
        return f"{self.sale_prefix}{number:04d}"

    async def next_sale_id(self) -> str:
        """This terminal's next sale number. Ids are ``STORE-TERMINAL-0001``; the newest by
        sequence is the highest, since only this terminal writes under its prefix."""
        def call() -> str:
            pattern = re.compile(re.escape(self.sale_prefix) + r"([0-9]+)")
            last = 0
            for (sale_id,) in (Sale.select(Sale.id).where(Sale.id.startswith(self.sale_prefix))
                               .order_by(Sale.seq.desc()).limit(20).tuples()):
                found = pattern.fullmatch(sale_id)
                if found:
                    last = max(last, int(found.group(1)))
            return self.sale_id_for(last + 1)
        return await self._run(call)

    async def healthy(self) -> bool:
        """The database answers a trivial query (for the watchdog)."""
        def call() -> bool:
            return self.store.db.execute_sql("SELECT 1").fetchone() == (1,)
        return await self._run(call)

    async def close(self) -> None:
        """Close the store, then its thread (the HQ link, which shares it, is stopped first)."""
        await self._run(self.store.close)
        self.executor.close()

