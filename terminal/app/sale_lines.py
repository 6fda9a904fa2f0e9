"""Ringing up: products by code or scan, department amounts and quantities. A scanned code
that is no product may be a member's card.
"""

from __future__ import annotations

from terminal.app.catalogue import said
from terminal.app.hqlink import CardStoppedAtHq, HqUnreachable
from terminal.app.keyed import parse_amount, parse_count
from terminal.app.members import Members
from terminal.app.till_base import facts
from terminal.core.pan import shown_code
from terminal.loyalty.errors import Refused, UnknownCard
from terminal.loyalty.pricing import MAX_QTY, Line


class SaleLines(Members):
    """Adding lines to the sale."""

    async def _ready_enter(self) -> None:
        if self.keyed.empty:
            await self._prompt()
            return
        await self._add_product(self.keyed.take())

    async def _ready_add(self) -> None:
        if self.keyed.empty:
            await self.refuse(said("sale.code_first"))
            return
        await self._add_product(self.keyed.take())

    async def _add_product(self, code: str) -> None:
        line = await self.ledger.find_product(code)
        if line is None:
            await self.refuse(said("sale.unknown_product", code=shown_code(code)))
            return
        await self._add_line(line)

    async def _scan_item_or_card(self, code: str) -> None:
        line = await self.ledger.find_product(code)
        if line is not None:
            await self._add_line(line)
            return
        try:
            await self.ledger.member(code)
        except UnknownCard:
            try:
                known = await self._known_at_hq(code)
            except CardStoppedAtHq as exc:  # a member's card HQ stopped: said from its answer
                await self._stopped_at_hq(code, exc)
                return
            if not known:  # neither a product nor a member's card
                await self.refuse(said("sale.unknown_product", code=shown_code(code)))
                return
        except Refused:
            await self.refuse(said("sale.unknown_product", code=shown_code(code)))
            return
        await self._identify(code)

    async def _known_at_hq(self, code: str) -> bool:
        """Whether a scanned code this ledger does not know is a member card HQ knows; raises
        :class:`CardStoppedAtHq` when HQ answers that it is one it stopped."""
        if not self.link.reachable:
            return False
        try:
            return await self.link.find_member(self.ledger.card_hash(code)) is not None
        except HqUnreachable:
            return False

    async def _add_line(self, line: Line) -> None:
        try:
            self.draft.add(line)
        except Refused as exc:
            await self.refuse(exc)
            return
        await self._show_sale()

    async def _department(self, number: int) -> None:
        if number > len(self.setup.departments):
            await self.refuse(said("sale.no_department", number=number))
            return
        try:
            fen = parse_amount(self.keyed.text, "amount")
        except Refused as exc:
            self.keyed.take()
            await self.refuse(said("sale.department_amount", **facts(exc)))
            return
        self.keyed.take()
        category = self.setup.departments[number - 1]
        await self._add_line(Line(sku=f"DEPT{number}", qty=1, price_fen=fen,
                                  name=f"部门{number} Dept {number}", category=category))

    async def _ready_department_1(self) -> None:
        await self._department(1)

    async def _ready_department_2(self) -> None:
        await self._department(2)

    async def _ready_quantity(self) -> None:
        if not self.draft.lines:
            self.keyed.take()
            await self.refuse(said("sale.nothing_to_change"))
            return
        try:
            qty = parse_count(self.keyed.take(), "quantity", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(said("sale.quantity", **facts(exc)))
            return
        self.draft.set_quantity(len(self.draft.lines) - 1, qty)
        await self._show_sale()
