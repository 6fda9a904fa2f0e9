"""Tender and commit: the sale written, then the drawer and the receipt."""

from __future__ import annotations

import dataclasses

from terminal.app import receipts
from terminal.app.keyed import parse_amount
from terminal.app.modes import Mode
from terminal.app.subtotal import Subtotal
from terminal.drivers.document import Document
from terminal.loyalty import redemption
from terminal.loyalty.errors import Refused
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import SaleResult


class Tender(Subtotal):
    """Paying for the sale and recording it."""

    async def _ready_cash(self) -> None:
        await self._tender_from_ready("cash")

    async def _ready_card(self) -> None:
        await self._tender_from_ready("card")

    async def _ready_other_tender(self) -> None:
        await self._tender_from_ready("other")

    async def _tender_from_ready(self, tender: str) -> None:
        if not self.draft.lines:
            self.keyed.take()
            await self.refuse("No items in the sale yet")
            return
        keyed = self.keyed.take()
        await self._subtotal()
        if self.mode is Mode.SUBTOTAL:
            self.keyed.text = keyed
            await self._tender(tender)

    async def _subtotal_cash(self) -> None:
        await self._tender("cash")

    async def _subtotal_card(self) -> None:
        await self._tender("card")

    async def _subtotal_other_tender(self) -> None:
        await self._tender("other")

    async def _tender(self, tender: str) -> None:
        quote = self.quote
        assert quote is not None and self.operator is not None
        due = quote.due_fen - redemption.deduction_fen(self.rules, self.redeem_points)
        text = self.keyed.take()
        if tender == "cash" and text:
            try:
                given = parse_amount(text, "cash tendered")
            except Refused as exc:
                await self.refuse(str(exc))
                return
            if given < due:
                await self.refuse(f"Cash {yuan(given)} is less than the {yuan(due)} due")
                return
        elif text:
            await self.refuse(f"{tender.capitalize()} pays the amount due: clear the keyed "
                              f"{text} first")
            return
        else:
            given = due
        await self._commit(tender, given)

    async def _commit(self, tender: str, given: int) -> None:
        assert self.operator is not None
        sale_id = self.sale_id or await self.ledger.next_sale_id()
        request = self.draft.request(sale_id, tender, self.redeem_points, self.operator.name)
        self.committing = sale_id
        try:
            result = await self.ledger.sale(request, online=self._online(self.hold),
                                            held_at_hq=self._held_at_hq(self.hold,
                                                                        self.redeem_points))
        except Refused as exc:
            await self.refuse(str(exc))
            return
        finally:
            self.committing = None
        self.link.events_written()
        result = self._as_at_hq(result)
        change = given - result.paid_fen
        head = self._head()
        self._reset_sale()
        doc = receipts.sale_receipt(head, request, result, given, change)
        member = result.member
        self.draft.member = None
        second = f"Points {member.balance}" if member else "Thank you"
        if tender == "cash":
            first, prompt = (self._pair("CHANGE", yuan(change)),
                             f"Sale {result.id}: change {yuan(change)}")
        else:
            first, prompt = (self._pair("PAID", yuan(result.paid_fen)),
                             f"Sale {result.id} paid by {tender}")
        self._background_task(self._after_sale(doc, result.id, tender == "cash", first, prompt))
        await self.show(first, second, prompt=prompt)

    def _as_at_hq(self, result: SaleResult) -> SaleResult:
        """The sale as the member will see it at HQ (:meth:`_view_at_hq`)."""
        if result.member is None:
            return result
        return dataclasses.replace(result, member=self._view_at_hq(
            result.member, result.points_redeemed, result.points_earned))

    async def _after_sale(self, doc: Document, sale_id: str, cash: bool, first: str,
                          prompt: str) -> None:
        """Drawer and receipt after the commit. A problem with either is told to the cashier
        under the change line, which stays up: the change is what the customer is waiting for."""
        problems = []
        if cash:
            problem = await self.desk.open_drawer()
            if problem:
                problems.append(f"Open the drawer by hand: {problem}")
        printed = await self.desk.print(doc, sale_id)
        if not printed.result.printed:
            problems.append(f"Printer: {printed.result.message} (receipt kept: Reprint)")
        if problems:
            self.message = "; ".join(problems)
            short = "Drawer by hand" if len(problems) == 1 and cash and printed.result.printed \
                else "Receipt kept:Reprint"
            await self.show(first, short, prompt=f"{prompt}. {self.message}")
