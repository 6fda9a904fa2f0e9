"""Voids in the sale in progress: one line, or (with a manager) the whole sale."""

from __future__ import annotations

from terminal.app.catalogue import said, with_prompt
from terminal.app.hq_points import HqPoints
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.app.till_base import log
from terminal.loyalty.errors import InvalidInput, Refused
from terminal.loyalty.money import yuan


class Void(HqPoints):
    """Removing a line or voiding the sale."""

    async def _ready_void(self) -> None:
        if not self.keyed.empty:
            try:
                if not self.draft.lines:
                    raise InvalidInput("the sale has no lines to remove", "void", why="void.empty")
                number = parse_count(self.keyed.take(), "line no.", 1, len(self.draft.lines))
            except Refused as exc:
                self.keyed.take()
                await self.refuse(exc)
                return
            removed = self.draft.remove(number - 1)
            name = self.displays.show_name(removed.name or removed.sku)
            await self.show(self._pair(f"{self._label('VOID')} {name}",
                                       f"-{yuan(removed.list_fen)}"),
                            self._pair(self._label("TOTAL"), yuan(self.draft.total_fen)),
                            prompt=self._line_said("sale.removed", removed))
            return
        if self.draft.empty:
            await self.refuse(said("void.nothing"))
            return
        await self._with_manager("Void sale", self._void_sale)

    async def _subtotal_void(self) -> None:
        await self._with_manager("Void sale", self._void_sale)

    async def _void_sale(self, approver: str) -> None:
        await self._release_hold()
        log.info("sale in progress voided by %s (%d lines, %s)", approver,
                 len(self.draft.lines), yuan(self.draft.total_fen))
        self._reset_sale()
        await self.say(with_prompt("sale.voided", Mode.READY))
