"""The cashier's flow: one state machine over keypad actions, card swipes and scans.

Inputs arrive one at a time (``inputs.TillInputs`` queues them), so each handler sees a settled
state. A handler either completes its step or refuses with a message that names the problem and
changes nothing: every refusal goes through :meth:`Till.refuse` before any state is touched.
Printing, the drawer and the displays run on their devices' threads; a receipt is printed in the
background after the sale is committed, so the next customer never waits for the printer.

:class:`Till` reads its inputs and dispatches each keypad action to the handler the table in
:mod:`.machine` gives for the mode it is in (a pair not in the table is refused); the handlers
live with their operation, one module each: :mod:`.sign_in`, :mod:`.members`, :mod:`.sale_lines`,
:mod:`.price_check`, :mod:`.void`, :mod:`.subtotal`, :mod:`.tender`, :mod:`.refunds`,
:mod:`.exchange`, :mod:`.adjust`, :mod:`.reprint` and :mod:`.day_reports`, over the state and
helpers of :mod:`.till_base` and the modes of :mod:`.modes`.
"""

from __future__ import annotations

import asyncio

from terminal.app.adjust import Adjustments
from terminal.app.catalogue import key_zh, with_prompt
from terminal.app.exchange import Exchanges
from terminal.app.machine import HANDLERS
from terminal.app.modes import PROMPTS, Mode
from terminal.app.price_check import PriceCheck
from terminal.app.refunds import Refunds
from terminal.app.reprint import Reprints
from terminal.app.sale_lines import SaleLines
from terminal.app.sign_in import SignIn
from terminal.app.tender import Tender
from terminal.app.till_base import TillSetup
from terminal.app.void import Void
from terminal.drivers.barcode import parse_scan
from terminal.drivers.msr import InputRefused, parse_swipe
from terminal.loyalty.money import yuan

__all__ = ["PROMPTS", "Mode", "Till", "TillSetup"]

_ACTION_LABELS = {"decimal_point": "'.'", "other_tender": "Other tender"}


class Till(SignIn, SaleLines, PriceCheck, Void, Tender, Refunds, Exchanges, Adjustments,
           Reprints):
    """The cashier's state machine: every operation's handlers, reached through
    :data:`~terminal.app.machine.HANDLERS` by mode and action."""

    @property
    def status(self) -> str:
        """What the till is doing (systemd's STATUS=), and which devices are absent."""
        faults = self.displays.faults
        return f"{self._doing}; {faults}" if faults else self._doing

    @property
    def _doing(self) -> str:
        if self.committing:
            return f"committing sale {self.committing}"
        if self.operator is None:
            return "signed out"
        if self.draft.lines:
            return f"{self.mode}: {len(self.draft.lines)} lines, {yuan(self.draft.total_fen)}"
        return f"{self.mode} ({self.operator.role} {self.operator.name})"

    async def settle(self) -> None:
        """Wait for background work (receipts, drawer) started by earlier inputs."""
        while self._background:
            await asyncio.gather(*list(self._background))

    async def start(self) -> None:
        await self._prompt()

    async def on_action(self, action: str) -> None:
        self.refused = None
        if action == "clear":
            await self._clear()
            return
        if self.keyed.press(action):
            await self._echo()
            return
        handler = HANDLERS.get((self.mode, action))
        if handler is None:
            label = _ACTION_LABELS.get(action, action.replace("_", " ").capitalize())
            await self.refuse(with_prompt("action.not_here", self.mode, label=label,
                                          label_zh=key_zh(action)))
            return
        await handler(self)

    async def on_swipe(self, text: str) -> None:
        self.refused = None
        if self.operator is None:
            await self.refuse(with_prompt("sign_in.first", Mode.LOCKED))
            return
        try:
            card = parse_swipe(text)
        except InputRefused as exc:
            await self.refuse(exc)
            return
        await self._identify(card.number)

    async def on_scan(self, text: str) -> None:
        self.refused = None
        if self.operator is None:
            await self.refuse(with_prompt("sign_in.first", Mode.LOCKED))
            return
        try:
            code = parse_scan(text).code
        except InputRefused as exc:
            await self.refuse(exc)
            return
        if self.mode is Mode.REFUND_FIND:
            await self._find_sale(code)
        elif self.mode is Mode.EXCHANGE:
            await self._exchange(code)
        elif self.mode is Mode.PRICE_CHECK:
            await self._price_check(code)
        elif self.mode is Mode.READY:
            await self._scan_item_or_card(code)
        elif self.mode is Mode.SUBTOTAL:
            await self._identify(code)
        else:
            await self.refuse(with_prompt("not_now", self.mode))

    async def _clear(self) -> None:
        if not self.keyed.empty:
            self.keyed.take()
        elif self.mode in (Mode.MANAGER, Mode.MANAGER_PIN) and self.pending is not None:
            self.switch_to(self.pending.back_to)
            self.pending = self.approving = None
        elif self.mode is Mode.PIN:
            self.signing = None
            self.switch_to(Mode.LOCKED)
        elif self.mode is Mode.SUBTOTAL:
            await self._release_hold()
            self.quote, self.redeem_points = None, 0
            self.switch_to(Mode.READY)
        elif self.mode not in (Mode.READY, Mode.LOCKED):
            self.new_card = self.refund_sale = self.care_phone = None
            self.units = None
            self.switch_to(Mode.READY)
        await self._prompt()
