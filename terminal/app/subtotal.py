"""The subtotal: the quote, and the points the member redeems against it."""

from __future__ import annotations

from terminal.app.catalogue import said
from terminal.app.day_reports import DayReports
from terminal.app.hq_points import HqPoints
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.loyalty import redemption
from terminal.loyalty.errors import RedeemRefused, Refused


class Subtotal(HqPoints, DayReports):
    """Quoting the sale and redeeming points."""

    async def _ready_subtotal(self) -> None:
        if self.draft.lines:
            await self._subtotal()
        elif self.draft.member is not None:
            await self.refuse(said("sale.empty"))
        else:
            await self._with_manager("Z report", self._confirm_z)

    async def _subtotal(self) -> None:
        request = self.draft.request("quote", "cash", 0, "")
        try:
            quote = await self.ledger.quote(request, online=self.link.reachable,
                                            hq_balance=self._hq_balance())
        except Refused as exc:
            await self.refuse(exc)
            return
        self.quote = quote
        self.switch_to(Mode.SUBTOTAL)
        await self._show_quote()

    async def _subtotal_redeem(self) -> None:
        quote = self.quote
        assert quote is not None
        if self.draft.card is None:
            self.keyed.take()
            await self.refuse(said("redeem.no_member"))
            return
        text = self.keyed.take()
        try:
            points = parse_count(text, "points", 0, 10**9) if text else quote.max_redeem_points
            # The engine's rules first (minimum, step, share of the bill, balance), by name...
            redemption.check_deduction(self.rules, points, redemption.RedeemContext(
                quote.balance, 0, 0, True), quote.due_fen)
            # ...then the quote's limit, which also counts today's redemptions and, with HQ
            # unreachable, the offline allowance.
            if points > quote.max_redeem_points:
                raise RedeemRefused(f"{points} points is more than may be redeemed now "
                                    f"({quote.max_redeem_points})", "redeem", points=points,
                                    most=quote.max_redeem_points)
            if not text and not points:
                raise RedeemRefused(f"no points may be redeemed on this sale (balance "
                                    f"{quote.balance})", "redeem", balance=quote.balance)
        except Refused as exc:
            await self.refuse(exc)
            return
        await self._release_hold()
        if points:
            sale_id = await self.ledger.next_sale_id()
            try:
                self.hold = await self.link.hold(self.ledger.card_hash(self.draft.card), points,
                                                 sale_id)
            except Refused as exc:
                self.redeem_points = 0
                await self.refuse(exc)
                return
            self.sale_id = sale_id
        self.redeem_points = points
        await self._show_quote()
