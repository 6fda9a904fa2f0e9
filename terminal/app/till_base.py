"""The till's state and what every operation shares: showing and refusing on the displays,
the manager's approval, background work and printing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from terminal.app import receipts
from terminal.app.draft import Draft
from terminal.app.hqlink import Hold, HqLink
from terminal.app.keyed import Keyed
from terminal.app.ledger import LedgerGateway, SoldLine
from terminal.app.modes import MASKED, PROMPTS, Mode
from terminal.app.printing import ReceiptDesk
from terminal.app.screens import Displays, pole_name, two_lines
from terminal.drivers.document import Document
from terminal.drivers.textwidth import columns, text_width
from terminal.loyalty import redemption
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import MemberView, Quote
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.operators import SignedIn

# The till's log keeps one name, whichever module an operation lives in.
log = logging.getLogger("terminal.app.flow")


@dataclass
class Pending:
    """An action waiting for a manager's PIN, and where Clear goes back to."""

    what: str
    run: Callable[[str], Awaitable[None]]
    back_to: Mode


@dataclass(frozen=True)
class TillSetup:
    store: str
    terminal: str
    departments: tuple[str, ...]  # the category each department key sells under


class TillBase:
    """The state the cashier's operations share, and the helpers they all use."""

    def __init__(self, ledger: LedgerGateway, displays: Displays, desk: ReceiptDesk,
                 link: HqLink, rules: Rules, setup: TillSetup,
                 operator: SignedIn | None = None) -> None:
        self.ledger = ledger
        self.displays = displays
        self.desk = desk
        self.link = link
        self.rules = rules
        self.setup = setup
        self.operator = operator
        self._mode = Mode.READY if operator else Mode.LOCKED
        self.keyed = Keyed()
        self.draft = Draft()
        self.quote: Quote | None = None
        self.redeem_points = 0
        self.hold: Hold | None = None
        self.sale_id: str | None = None  # reserved when points are held for this sale
        self.pending: Pending | None = None
        self.signing: int | None = None  # the operator number keyed to sign in
        self.approving: int | None = None  # the manager number keyed to authorise ``pending``
        self.new_card: str | None = None  # the unknown card offered registration
        self.refund_sale: str | None = None
        self.refund_lines: list[SoldLine] = []
        self.units: int | None = None  # keyed before Quantity in refund and exchange
        self.approver = ""  # the manager who authorised the refund, adjustment or Z report
        self.message = ""  # the last thing shown, in full
        self.refused: str | None = None  # set when the last input was refused
        self.refusals: deque[str] = deque(maxlen=64)  # the latest refusals, newest last
        self.refusal_count = 0
        self.committing: str | None = None  # the sale id being written, for status and SIGTERM
        self._background: set[asyncio.Task[None]] = set()

    @property
    def mode(self) -> Mode:
        """Where the till is; it changes only through :meth:`switch_to`."""
        return self._mode

    def switch_to(self, mode: Mode) -> None:
        """The one place the till's mode changes (the table in :mod:`.machine` says which
        actions each mode takes)."""
        if mode is not self._mode:
            log.debug("mode %s -> %s", self._mode, mode)
        self._mode = mode

    async def show(self, line1: str, line2: str = "", prompt: str | None = None) -> None:
        self.message = f"{line1} {line2}".strip() if prompt is None else prompt
        await self.displays.show(line1, line2, self.draft.member, prompt)

    async def say(self, text: str) -> None:
        """A sentence for the cashier, wrapped onto the pole's two lines. Its second line may
        carry a device notice when it is empty or the sentence is the mode's standing prompt
        (:class:`~terminal.app.screens.Displays`)."""
        self.message = text
        line1, line2 = two_lines(text, self.displays.columns)
        await self.displays.show(line1, line2, self.draft.member, text,
                                 spare=not line2 or text == PROMPTS[self.mode])

    async def refuse(self, text: str) -> None:
        """Tell the cashier why the input was refused; nothing else changes."""
        self.refused = text
        self.refusals.append(text)
        self.refusal_count += 1
        await self.say(text)

    def _pair(self, left: str, right: str) -> str:
        width = self.displays.columns
        room = max(1, width - text_width(right) - 1)
        return columns([pole_name(left), right], [room, width - room - 1], "lr")

    async def _prompt(self) -> None:
        if self.mode is Mode.READY and self.draft.lines:
            await self._show_sale()
        elif self.mode is Mode.READY and self.draft.member is not None:
            await self._show_member(self.draft.member)
        elif self.mode is Mode.SUBTOTAL and self.quote is not None:
            await self._show_quote()
        else:
            await self.say(PROMPTS[self.mode])

    async def _echo(self) -> None:
        text = "*" * len(self.keyed.text) if self.mode in MASKED else self.keyed.text
        await self.show(pole_name(PROMPTS[self.mode]), text, prompt=f"{PROMPTS[self.mode]}: "
                        f"{text}")

    async def _show_member(self, view: MemberView) -> None:
        name = pole_name(view.name)
        first = f"Hi {name}" if name and name.isascii() else f"Member ****{view.card_last4}"
        await self.show(first, f"Points {view.balance} {view.tier}",
                        prompt=f"{view.name or 'Member'}: {view.balance} points, {view.tier}")

    async def _show_sale(self) -> None:
        last = self.draft.lines[-1]
        item = f"{last.qty}x {last.name or last.sku}" if last.qty > 1 else last.name or last.sku
        await self.show(self._pair(item, yuan(last.list_fen)),
                        self._pair("TOTAL", yuan(self.draft.total_fen)))

    async def _show_quote(self) -> None:
        quote = self.quote
        assert quote is not None
        due = quote.due_fen - redemption.deduction_fen(self.rules, self.redeem_points)
        if self.redeem_points:
            second = self._pair(f"-{self.redeem_points}pt", f"DUE {yuan(due)}")
        elif quote.max_redeem_points:
            second = self._pair(f"max {quote.max_redeem_points}pt", f"DUE {yuan(due)}")
        else:
            second = self._pair("DUE", yuan(due))
        discount = f" less {yuan(quote.discount_fen)} discount" if quote.discount_fen else ""
        await self.show(self._pair("SUBTOTAL", yuan(quote.list_fen)), second,
                        prompt=f"Due {yuan(due)}{discount}; balance {quote.balance}, up to "
                               f"{quote.max_redeem_points} points "
                               f"({yuan(quote.max_deduction_fen)}) may be redeemed")

    def _background_task(self, job: Awaitable[None]) -> None:
        task = asyncio.ensure_future(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _with_manager(self, what: str, run: Callable[[str], Awaitable[None]]) -> None:
        """Run ``run(approver)`` now if a manager is signed in, else after a manager's number
        and PIN."""
        if self.operator is not None and self.operator.is_manager:
            await run(self.operator.name)
            return
        self.keyed.take()  # the PIN starts from an empty entry
        self.pending = Pending(what, run, self.mode)
        self.switch_to(Mode.MANAGER)
        await self.say(f"{what} needs a manager: manager no., then Enter")

    def _head(self) -> receipts.Header:
        at, _trusted = self.ledger.clock()
        return receipts.Header(self.rules.name, self.setup.store, self.setup.terminal,
                               self.operator.name if self.operator else "", at)

    def _stamp(self) -> str:
        return f"{self.ledger.clock()[0]:%Y%m%d%H%M%S}"

    def _print(self, doc: Document, receipt_id: str) -> None:
        self._background_task(self._print_now(doc, receipt_id))

    async def _print_now(self, doc: Document, receipt_id: str) -> None:
        printed = await self.desk.print(doc, receipt_id)
        if not printed.result.printed:
            await self.say(f"Printer: {printed.result.message}")

    def _reset_sale(self) -> None:
        self.draft, self.quote, self.redeem_points = Draft(), None, 0
        self.hold = self.sale_id = None
        self.switch_to(Mode.READY)
