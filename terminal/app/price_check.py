"""Price check: a product's price shown, nothing sold."""

from __future__ import annotations

from terminal.app.modes import Mode
from terminal.app.screens import pole_name
from terminal.app.till_base import TillBase
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
            await self.refuse(f"Unknown product {code}: not in the catalogue" if code
                              else "Scan the product or key its code, then Enter")
            return
        self.switch_to(Mode.READY)
        await self.show(pole_name(line.name), self._pair("PRICE", yuan(line.price_fen)),
                        prompt=f"{line.name}: {yuan(line.price_fen)} (not added)")
