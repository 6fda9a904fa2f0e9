"""Tender and commit: the sale written, then the drawer and the receipt."""

from __future__ import annotations

import dataclasses

from terminal.app import receipts
from terminal.app.catalogue import TENDERS_ZH, Said, problem_text, said
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
            await self.refuse(said("sale.empty"))
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
                await self.refuse(exc)
                return
            if given < due:
                await self.refuse(said("tender.cash_short", given=yuan(given), amount=yuan(due)))
                return
        elif text:
            await self.refuse(said("tender.clear_keyed", tender_cap=tender.capitalize(),
                                   tender_zh=TENDERS_ZH[tender], keyed=text))
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
            await self.refuse(exc)
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
        second = (f"{self._label('POINTS')} {member.balance}" if member
                  else self._label("THANKS"))
        if tender == "cash":
            first = self._pair(self._label("CHANGE"), yuan(change))
            prompt = said("sale.change", sale=result.id, amount=yuan(change))
        else:
            first = self._pair(self._label("PAID"), yuan(result.paid_fen))
            prompt = said("sale.paid", sale=result.id, tender=tender,
                          tender_zh=TENDERS_ZH[tender])
        self._background_task(self._after_sale(doc, result.id, tender == "cash", first, prompt))
        await self.show(first, second, prompt=prompt)

    def _as_at_hq(self, result: SaleResult) -> SaleResult:
        """The sale as the member will see it at HQ (:meth:`_view_at_hq`)."""
        if result.member is None:
            return result
        return dataclasses.replace(result, member=self._view_at_hq(
            result.member, result.points_redeemed, result.points_earned))

    async def _after_sale(self, doc: Document, sale_id: str, cash: bool, first: str,
                          prompt: Said) -> None:
        """Drawer and receipt after the commit. A problem with either is told to the cashier
        under the change line, which stays up: the change is what the customer is waiting for."""
        problems = []
        if cash:
            problem = await self.desk.open_drawer()
            if problem:
                problems.append(said("sale.drawer_by_hand", **problem_text(problem)))
        printed = await self.desk.print(doc, sale_id)
        if not printed.result.printed:
            problems.append(said("sale.receipt_kept", **problem_text(printed.result.message)))
        if problems:
            # The change stays on the first line; the last problem's short form under it.
            await self.show(first, self.displays.pole_lines(problems[-1])[1],
                            prompt=[prompt, *problems])
