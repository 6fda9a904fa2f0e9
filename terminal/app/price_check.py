"""Price check: a product's price shown, nothing sold."""

from __future__ import annotations

from terminal.app.catalogue import said
from terminal.app.modes import Mode
from terminal.app.till_base import TillBase
from terminal.core.pan import shown_code
from terminal.loyalty.money import yuan


class PriceCheck(TillBase):
    """Showing a product's price."""

    async def _ready_price_check(self) -> None:
        if self.keyed.empty:
            self.switch_to(Mode.PRICE_CHECK)
            await self._prompt()
            return
        await self._price_check(self.keyed.take())

    async def _price_check_enter(self) -> None:
        await self._price_check(self.keyed.take())

    async def _price_check(self, code: str) -> None:
        line = await self.ledger.find_product(code) if code else None
        if line is None:
            await self.refuse(said("sale.unknown_product", code=shown_code(code)) if code
                              else said("price.how"))
            return
        self.switch_to(Mode.READY)
        await self.show(self.displays.show_name(line.name),
                        self._pair(self._label("PRICE"), yuan(line.price_fen)),
                        prompt=said("price.found", name=line.name, amount=yuan(line.price_fen)))
