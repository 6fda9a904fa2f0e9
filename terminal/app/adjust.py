"""Manual points adjustments, with a manager."""

from __future__ import annotations

from terminal.app import receipts
from terminal.app.catalogue import said
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.app.till_base import TillBase
from terminal.loyalty.errors import Refused


class Adjustments(TillBase):
    """Adjusting a member's points by hand."""

    async def _ready_discount(self) -> None:
        if self.draft.lines or self.draft.card is None:
            self.keyed.take()
            await self.refuse(said("adjust.sale_open"))
            return
        await self._with_manager("Points adjustment", self._start_adjust)

    async def _start_adjust(self, approver: str) -> None:
        self.approver = approver
        self.switch_to(Mode.ADJUST)
        await self._prompt()

    async def _adjust_enter(self) -> None:
        await self._adjust(+1)

    async def _adjust_discount(self) -> None:
        await self._adjust(-1)

    async def _adjust(self, sign: int) -> None:
        card = self.draft.card
        assert card is not None
        try:
            points = parse_count(self.keyed.take(), "points", 1, 10_000_000)
            view = await self.ledger.adjust(card, sign * points,
                                            f"manual adjustment at till {self.setup.terminal}",
                                            self.approver)
        except Refused as exc:
            await self.refuse(exc)
            return
        self.link.events_written()
        self.draft.member = view
        self.switch_to(Mode.READY)
        self._print(receipts.adjustment_receipt(self._head(), view, sign * points),
                    f"adjust-{view.card_last4}-{self._stamp()}")
        await self._show_member(view)
