"""Goods for points, held at HQ first as a sale's redemption is."""

from __future__ import annotations

import dataclasses

from terminal.app import receipts
from terminal.app.catalogue import prompt, said, with_prompt
from terminal.app.hq_points import HqPoints
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.app.till_base import facts
from terminal.loyalty import redemption
from terminal.loyalty.errors import Refused
from terminal.loyalty.pricing import MAX_QTY


class Exchanges(HqPoints):
    """Exchanging points for goods."""

    async def _ready_redeem(self) -> None:
        if self.draft.lines:
            self.keyed.take()
            await self.refuse(said("exchange.subtotal_first"))
            return
        if self.draft.card is None:
            await self.refuse(said("exchange.card_first"))
            return
        if not self.rules.redeem.goods:
            await self.refuse(said("exchange.no_goods"))
            return
        self.units = None
        self.switch_to(Mode.EXCHANGE)
        listing = "; ".join(f"{n} {g.name} {g.points}pt"
                            for n, g in enumerate(self.rules.redeem.goods.values(), 1))
        first = next(iter(self.rules.redeem.goods.values()))
        shown = with_prompt("exchange.listing", Mode.EXCHANGE, listing=listing)
        pt = self._label("PT")
        await self.show(self._pair(f"1 {self.displays.show_name(first.name)}",
                                   f"{first.points}{pt}"),
                        self.displays.pole_lines(prompt(Mode.EXCHANGE))[0], prompt=shown)

    async def _exchange_quantity(self) -> None:
        try:
            self.units = parse_count(self.keyed.take(), "quantity", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(exc)
            return
        await self.say(said("exchange.units", units=self.units))

    async def _exchange_enter(self) -> None:
        goods = list(self.rules.redeem.goods)
        try:
            number = parse_count(self.keyed.take(), "goods no.", 1, len(goods))
        except Refused as exc:
            await self.refuse(exc)
            return
        await self._exchange(goods[number - 1])

    async def _exchange(self, sku: str) -> None:
        """Goods for points, redeemed as a sale's points are: HQ is asked to hold them first
        (named by the exchange's id), the ledger checks against HQ's balance when HQ answered
        the lookup, and a refused or failed commit releases the hold."""
        assert self.draft.card is not None and self.operator is not None
        card, qty, shown = self.draft.card, self.units or 1, self.draft.member
        try:
            # The engine's checks that need no ledger (the goods, the quantity, the balance the
            # member was shown), so HQ is asked to hold only what this till may exchange.
            shown_ctx = redemption.RedeemContext(shown.balance if shown else 2**62, 0, 0, True)
            _goods, points = redemption.check_exchange(self.rules, sku, qty, shown_ctx, 0)
        except Refused as exc:
            await self.refuse(exc)
            return
        exchange_id = self.ledger.new_exchange_id()
        try:
            hold = await self.link.hold(self.ledger.card_hash(card), points, exchange_id,
                                        "exchange")
        except Refused as exc:  # HQ said no: nothing is written here
            await self.refuse(said("exchange.refused", **facts(exc)))
            return
        try:
            result = await self.ledger.exchange(
                card, sku, qty, self._online(hold), self.operator.name,
                held_at_hq=self._held_at_hq(hold, points), exchange_id=exchange_id)
        except Refused as exc:
            await self.link.void(hold)
            await self.refuse(exc)
            return
        except BaseException:
            await self.link.void(hold)  # not recorded (a fault, a shutdown): release HQ's hold
            raise
        self.link.events_written()
        view = self._view_at_hq(result.member, result.points)
        if self.draft.remote is not None:  # what HQ will answer once it has the exchange
            self.draft.remote = dataclasses.replace(self.draft.remote, balance=view.balance)
        result = dataclasses.replace(result, member=view)
        self.units, self.draft.member = None, result.member
        self.switch_to(Mode.READY)
        self._print(receipts.exchange_receipt(self._head(), result), f"exchange-{result.id}")
        await self.show(self._pair(f"{result.qty}x {self.displays.show_name(result.name)}",
                                   f"-{result.points}{self._label('PT')}"),
                        f"{self._label('POINTS')} {result.member.balance}",
                        prompt=said("exchange.done", units=result.qty, name=result.name,
                                    points=result.points, balance=result.member.balance))
