"""Refunds and voids of a recorded sale, with a manager: the whole sale or units of a line."""

from __future__ import annotations

from terminal.app import receipts
from terminal.app.keyed import parse_count
from terminal.app.modes import PROMPTS, Mode
from terminal.app.till_base import TillBase
from terminal.drivers.document import Document
from terminal.loyalty.errors import Refused
from terminal.loyalty.money import yuan
from terminal.loyalty.pricing import MAX_QTY


class Refunds(TillBase):
    """Refunding recorded sales."""

    async def _ready_refund(self) -> None:
        if not self.draft.empty:
            await self.refuse("Finish or void the sale in progress before a refund")
            return
        await self._with_manager("Refund", self._start_refund)

    async def _start_refund(self, approver: str) -> None:
        self.units = None
        self.switch_to(Mode.REFUND_FIND)
        self.approver = approver
        await self._prompt()

    async def _refund_find_enter(self) -> None:
        try:
            number = parse_count(self.keyed.take(), "sale no.", 1, 10**9)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self._find_sale(self.ledger.sale_id_for(number))

    async def _find_sale(self, sale_id: str) -> None:
        lines = await self.ledger.sold_lines(sale_id)
        if lines is None:
            await self.refuse(f"Sale {sale_id} is not recorded on this terminal")
            return
        self.refund_sale, self.refund_lines = sale_id, lines
        self.switch_to(Mode.REFUND_LINES)
        total = sum(line.paid_fen for line in lines)
        await self.show(self._pair(sale_id[-8:], yuan(total)), f"{len(lines)} lines: Enter=all",
                        prompt=f"Sale {sale_id}, {len(lines)} lines, paid {yuan(total)}. "
                               + PROMPTS[Mode.REFUND_LINES])

    async def _refund_lines_quantity(self) -> None:
        try:
            self.units = parse_count(self.keyed.take(), "units", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self.say(f"{self.units} unit(s): now the line no. + Enter")

    async def _refund_lines_enter(self) -> None:
        await self._refund("refund")

    async def _refund_lines_void(self) -> None:
        await self._refund("void")

    async def _refund(self, kind: str) -> None:
        sale_id = self.refund_sale
        assert sale_id is not None
        text = self.keyed.take()
        request: list[tuple[str, object]] | None = None
        if text:
            try:
                number = parse_count(text, "line no.", 1, len(self.refund_lines))
            except Refused as exc:
                await self.refuse(str(exc))
                return
            line = self.refund_lines[number - 1]
            request = [(line.sku, self.units or line.qty)]
        elif self.units is not None:
            await self.refuse("Key the line no. for those units, then Enter")
            return
        try:
            result = await self.ledger.refund(sale_id, request, self.approver, kind)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        self.link.events_written()
        names = {line.sku: line.name for line in self.refund_lines}
        self.refund_sale, self.units = None, None
        self.switch_to(Mode.READY)
        self._background_task(self._after_refund(
            receipts.refund_receipt(self._head(), result, names), result.id))
        await self.show(self._pair("REFUND", yuan(result.refunded_fen)),
                        f"Points -{result.points_reversed}" if result.member else "",
                        prompt=f"{kind.capitalize()} of {sale_id}: {yuan(result.refunded_fen)} "
                               "back to the customer")

    async def _after_refund(self, doc: Document, refund_id: str) -> None:
        problem = await self.desk.open_drawer()
        if problem:
            await self.say(f"Open the drawer by hand: {problem}")
        await self._print_now(doc, refund_id)
