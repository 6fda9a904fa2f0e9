"""Reprints: a kept receipt, the receipts the printer could not print, or the last."""

from __future__ import annotations

from terminal.app import receipts
from terminal.app.catalogue import problem_text, said
from terminal.app.keyed import parse_count
from terminal.app.till_base import TillBase
from terminal.loyalty.errors import Refused


class Reprints(TillBase):
    """Reprinting receipts."""

    async def _ready_reprint(self) -> None:
        if not self.keyed.empty:
            # A sale by its number; a refund or void by its number after the decimal point
            # (".12" is S001-T01-R0012): the keypad has no letters.
            text = self.keyed.take()
            refund = text.startswith(".")
            try:
                number = parse_count(text.removeprefix("."), "refund no." if refund
                                     else "sale no.", 1, 10**9)
            except Refused as exc:
                await self.refuse(exc)
                return
            receipt_id = (self.ledger.refund_id_for(number) if refund
                          else self.ledger.sale_id_for(number))
            await self._with_manager("Reprint", lambda who: self._reprint(receipt_id))
        elif self.desk.pending:
            results = await self.desk.reprint_pending()
            done = sum(r.printed for r in results)
            if results and not results[-1].printed:
                await self.refuse(said("printer.problem", **problem_text(results[-1].message),
                                        done=done))
            else:
                await self.say(said("reprint.kept_done", done=done))
        elif self.desk.last_id is not None:
            await self._reprint(self.desk.last_id)
        else:
            await self.refuse(said("reprint.none"))

    async def _reprint(self, receipt_id: str) -> None:
        lines = await self.desk.archived(receipt_id)
        if lines is None:
            await self.refuse(said("reprint.not_kept", sale=receipt_id))
            return
        self._print(receipts.reprint(lines, receipt_id), f"{receipt_id}-copy")
        await self.say(said("reprint.started", sale=receipt_id))
