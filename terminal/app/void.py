"""Voids in the sale in progress: one line, or (with a manager) the whole sale."""

from __future__ import annotations

from terminal.app.hq_points import HqPoints
from terminal.app.keyed import parse_count
from terminal.app.modes import PROMPTS, Mode
from terminal.app.till_base import log
from terminal.loyalty.errors import InvalidInput, Refused
from terminal.loyalty.money import yuan


class Void(HqPoints):
    """Removing a line or voiding the sale."""

    async def _ready_void(self) -> None:
        if not self.keyed.empty:
            try:
                if not self.draft.lines:
                    raise InvalidInput("the sale has no lines to remove", "void")
                number = parse_count(self.keyed.take(), "line no.", 1, len(self.draft.lines))
            except Refused as exc:
                self.keyed.take()
                await self.refuse(str(exc))
                return
            removed = self.draft.remove(number - 1)
            await self.show(self._pair(f"VOID {removed.name or removed.sku}",
                                       f"-{yuan(removed.list_fen)}"),
                            self._pair("TOTAL", yuan(self.draft.total_fen)))
            return
        if self.draft.empty:
            await self.refuse("Nothing to void: no sale in progress")
            return
        await self._with_manager("Void sale", self._void_sale)

    async def _subtotal_void(self) -> None:
        await self._with_manager("Void sale", self._void_sale)

    async def _void_sale(self, approver: str) -> None:
        await self._release_hold()
        log.info("sale in progress voided by %s (%d lines, %s)", approver,
                 len(self.draft.lines), yuan(self.draft.total_fen))
        self._reset_sale()
        await self.say("Sale voided. " + PROMPTS[Mode.READY])
