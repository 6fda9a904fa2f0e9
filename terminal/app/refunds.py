"""Refunds and voids of a recorded sale, with a manager: the whole sale or units of a line."""

from __future__ import annotations

from terminal.app import receipts
from terminal.app.catalogue import REFUND_KINDS, problem_text, said, with_prompt
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.app.till_base import TillBase
from terminal.drivers.document import Document
from terminal.loyalty.errors import Refused
from terminal.loyalty.money import yuan
from terminal.loyalty.pricing import MAX_QTY


class Refunds(TillBase):
    """Refunding recorded sales."""

    async def _ready_refund(self) -> None:
        if not self.draft.empty:
            await self.refuse(said("refund.sale_open"))
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
            await self.refuse(exc)
            return
        await self._find_sale(self.ledger.sale_id_for(number))

    async def _find_sale(self, sale_id: str) -> None:
        lines = await self.ledger.sold_lines(sale_id)
        if lines is None:
            await self.refuse(said("refund.unknown_sale", sale=sale_id))
            return
        self.refund_sale, self.refund_lines = sale_id, lines
        self.switch_to(Mode.REFUND_LINES)
        total = sum(line.paid_fen for line in lines)
        found = with_prompt("refund.found", Mode.REFUND_LINES, sale=sale_id, count=len(lines),
                            amount=yuan(total))
        await self.show(self._pair(sale_id[-8:], yuan(total)), self.displays.pole_lines(found)[0],
                        prompt=found)

    async def _refund_lines_quantity(self) -> None:
        try:
            self.units = parse_count(self.keyed.take(), "units", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(exc)
            return
        await self.say(said("refund.units", units=self.units))

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
                await self.refuse(exc)
                return
            line = self.refund_lines[number - 1]
            request = [(line.sku, self.units or line.qty)]
        elif self.units is not None:
            await self.refuse(said("refund.line_needed"))
            return
        try:
            result = await self.ledger.refund(sale_id, request, self.approver, kind)
        except Refused as exc:
            await self.refuse(exc)
            return
        self.link.events_written()
        names = {line.sku: line.name for line in self.refund_lines}
        self.refund_sale, self.units = None, None
        self.switch_to(Mode.READY)
        self._background_task(self._after_refund(
            receipts.refund_receipt(self._head(), result, names), result.id))
        kind_zh, kind_en = REFUND_KINDS[kind]
        await self.show(self._pair(self._label("REFUND"), yuan(result.refunded_fen)),
                        f"{self._label('POINTS')} -{result.points_reversed}"
                        if result.member else "",
                        prompt=said("refund.done", kind=kind_en, kind_zh=kind_zh, sale=sale_id,
                                    refund=result.id, amount=yuan(result.refunded_fen)))

    async def _after_refund(self, doc: Document, refund_id: str) -> None:
        problem = await self.desk.open_drawer()
        if problem:
            await self.say(said("drawer.by_hand", **problem_text(problem)))
        await self._print_now(doc, refund_id)
