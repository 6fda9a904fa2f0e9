"""The till's state machine as one table: (mode, keypad action) -> handler.

Every keypad action the till reacts to is listed here, by the mode it is pressed in; a pair not
in the table is refused with "... does nothing here" and the mode's prompt. The handlers live
with their operation (:mod:`.sign_in`, :mod:`.sale_lines` ...) and are plain methods of the till;
this module only says which one a key reaches. The mode changes through
:meth:`~terminal.app.till_base.TillBase.switch_to` alone.

Digits, the decimal point and Backspace go to the entry buffer and Clear steps back in every
mode (:meth:`~terminal.app.flow.Till.on_action`); swipes and scans are not keypad actions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from terminal.app.adjust import Adjustments
from terminal.app.day_reports import DayReports
from terminal.app.exchange import Exchanges
from terminal.app.members import Members
from terminal.app.modes import Mode
from terminal.app.price_check import PriceCheck
from terminal.app.refunds import Refunds
from terminal.app.reprint import Reprints
from terminal.app.sale_lines import SaleLines
from terminal.app.sign_in import SignIn
from terminal.app.subtotal import Subtotal
from terminal.app.tender import Tender
from terminal.app.void import Void

if TYPE_CHECKING:
    from terminal.app.flow import Till

Handler = Callable[["Till"], Awaitable[None]]

# Reached only through a store's keymap override (docs/cashier.md), not the default keymap.
OVERRIDE_ACTIONS = frozenset({"other_tender"})


def _build() -> dict[tuple[Mode, str], Handler]:
    table: dict[tuple[Mode, str], Handler] = {
        (Mode.LOCKED, "enter"): SignIn._locked_enter,
        (Mode.PIN, "enter"): SignIn._pin_enter,
        (Mode.PIN, "void"): SignIn._pin_void,
        (Mode.LOCKED, "sign_in_out"): SignIn._locked_sign_in_out,
        (Mode.READY, "sign_in_out"): SignIn._ready_sign_in_out,
        (Mode.MANAGER, "enter"): SignIn._manager_enter,
        (Mode.MANAGER_PIN, "enter"): SignIn._manager_pin_enter,
        # a sale: items, quantities, departments
        (Mode.READY, "enter"): SaleLines._ready_enter,
        (Mode.READY, "add"): SaleLines._ready_add,
        (Mode.READY, "quantity"): SaleLines._ready_quantity,
        (Mode.READY, "department_1"): SaleLines._ready_department_1,
        (Mode.READY, "department_2"): SaleLines._ready_department_2,
        (Mode.READY, "void"): Void._ready_void,
        (Mode.SUBTOTAL, "void"): Void._subtotal_void,
        (Mode.READY, "price_check"): PriceCheck._ready_price_check,
        (Mode.PRICE_CHECK, "enter"): PriceCheck._price_check_enter,
        # members
        (Mode.REGISTER, "enter"): Members._register_enter,
        (Mode.CONSENT, "enter"): Members._consent_enter,
        (Mode.READY, "balance"): Members._ready_balance,
        # subtotal, redemption and tender (Subtotal on an empty sale is the Z report)
        (Mode.READY, "subtotal"): Subtotal._ready_subtotal,
        (Mode.SUBTOTAL, "redeem"): Subtotal._subtotal_redeem,
        (Mode.READY, "cash"): Tender._ready_cash,
        (Mode.READY, "card"): Tender._ready_card,
        (Mode.READY, "other_tender"): Tender._ready_other_tender,
        (Mode.SUBTOTAL, "cash"): Tender._subtotal_cash,
        (Mode.SUBTOTAL, "card"): Tender._subtotal_card,
        (Mode.SUBTOTAL, "other_tender"): Tender._subtotal_other_tender,
        (Mode.CONFIRM_Z, "enter"): DayReports._confirm_z_enter,
        # refunds of recorded sales
        (Mode.READY, "refund"): Refunds._ready_refund,
        (Mode.REFUND_FIND, "enter"): Refunds._refund_find_enter,
        (Mode.REFUND_LINES, "enter"): Refunds._refund_lines_enter,
        (Mode.REFUND_LINES, "quantity"): Refunds._refund_lines_quantity,
        (Mode.REFUND_LINES, "void"): Refunds._refund_lines_void,
        # goods for points, manual adjustments, reprints
        (Mode.READY, "redeem"): Exchanges._ready_redeem,
        (Mode.EXCHANGE, "enter"): Exchanges._exchange_enter,
        (Mode.EXCHANGE, "quantity"): Exchanges._exchange_quantity,
        (Mode.READY, "discount"): Adjustments._ready_discount,
        (Mode.ADJUST, "enter"): Adjustments._adjust_enter,
        (Mode.ADJUST, "discount"): Adjustments._adjust_discount,
        (Mode.READY, "reprint"): Reprints._ready_reprint,
    }
    # Member is taken in every mode but signing in: it refuses itself where no member fits.
    for mode in Mode:
        if mode not in (Mode.LOCKED, Mode.PIN):
            table.setdefault((mode, "member"), Members._any_member)
    return table


HANDLERS: Mapping[tuple[Mode, str], Handler] = MappingProxyType(_build())
