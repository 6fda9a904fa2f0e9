"""The till's state and what every operation shares: showing and refusing on the displays,
the manager's approval, background work and printing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from terminal.app import receipts
from terminal.app.catalogue import (
    Name,
    Said,
    problem_text,
    prompt,
    refusal,
    refusal_facts,
    said,
    what_zh,
)
from terminal.app.draft import Draft
from terminal.app.hqlink import Hold, HqLink
from terminal.app.keyed import Keyed
from terminal.app.ledger import LedgerGateway, SoldLine
from terminal.app.modes import MASKED, Mode
from terminal.app.pole_text import chinese_name, latin_name
from terminal.app.printing import ReceiptDesk
from terminal.app.screens import Displays
from terminal.app.tier_words import TierName
from terminal.drivers.barcode import ScanError
from terminal.drivers.document import Document
from terminal.drivers.msr import SwipeReadError
from terminal.drivers.textwidth import columns, text_width
from terminal.loyalty import redemption
from terminal.loyalty.errors import PaymentCardRefused, Refused
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import MemberView, Quote
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.card_states import CardBlocked
from terminal.loyalty.store.operators import SignedIn


def facts(exc: Refused) -> dict[str, str]:
    """A refusal's facts for a message that words them (``detail`` and ``detail_zh``)."""
    return refusal_facts(str(exc), exc.rule, exc.values)


def refused(exc: Exception) -> Said:
    """The catalogue's message for a refusal raised by the rules or a device."""
    if isinstance(exc, PaymentCardRefused):
        return said("swipe.payment_card")
    if isinstance(exc, SwipeReadError | ScanError):
        read = refusal_facts(exc.reason, exc.rule, exc.values)
        key = "swipe.unread" if isinstance(exc, SwipeReadError) else "scan.unread"
        return said(key, reason=read["detail"], reason_zh=read["detail_zh"])
    if isinstance(exc, CardBlocked):  # HQ's word arrived after the card was identified
        return said(exc.rule, card4=exc.card4, reason=exc.block.reason)
    if isinstance(exc, Refused):
        return refusal(str(exc), exc.rule, exc.values)
    return refusal(str(exc))


def member_said(view: MemberView) -> Said:
    """The member, their points and tier: by name, or by card where the name is not known."""
    if view.name:
        return said("member.shown", name=Name(view.name), points=view.balance,
                    tier=TierName(view.tier))
    return said("member.card", card4=view.card_last4, points=view.balance,
                tier=TierName(view.tier))


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
        # The phone a member just registered with, until they answer member care's question
        # (then it goes with a yes to HQ, and is forgotten here either way).
        self.care_phone: str | None = None
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

    async def show(self, line1: str, line2: str = "",
                   prompt: Said | Sequence[Said] | None = None) -> None:
        """Two pole lines laid out by the till (an item and its price); the LCD shows
        ``prompt`` whole (or the two lines)."""
        parts = [prompt] if isinstance(prompt, Said) else list(prompt or ())
        self.message = (". ".join(p.long("en") for p in parts) if parts
                        else f"{line1} {line2}".strip())
        await self.displays.show(line1, line2, self.draft.member,
                                 self.displays.long(parts) if parts else None)

    async def say(self, what: Said) -> None:
        """A message of the catalogue: its short form on the pole, its long form on the LCD
        (and in ``message``, in English, for the log). The pole's second line may carry a device
        notice when it is empty or the message is the mode's standing prompt
        (:class:`~terminal.app.screens.Displays`)."""
        self.message = what.long("en")
        line1, line2 = self.displays.pole_lines(what)
        await self.displays.show(line1, line2, self.draft.member, self.displays.long(what),
                                 spare=not line2 or what.key == f"prompt.{self.mode}")

    async def refuse(self, what: Said | Exception) -> None:
        """Tell the cashier why the input was refused; nothing else changes. A refusal of the
        rules or of a device (an exception) is said by what it names."""
        if isinstance(what, Exception):
            what = refused(what)
        text = what.long("en")
        self.refused = text
        self.refusals.append(text)
        self.refusal_count += 1
        await self.say(what)

    def _pair(self, left: str, right: str) -> str:
        """A name or label and an amount on one pole line (the name fitted, never the amount)."""
        width = self.displays.columns
        room = max(1, width - text_width(right) - 1)
        return columns([self.displays.show_name(left), right], [room, width - room - 1], "lr")

    def _label(self, key: str) -> str:
        return self.displays.label(key)

    async def _prompt(self) -> None:
        if self.mode is Mode.READY and self.draft.lines:
            await self._show_sale()
        elif self.mode is Mode.READY and self.draft.member is not None:
            await self._show_member(self.draft.member)
        elif self.mode is Mode.SUBTOTAL and self.quote is not None:
            await self._show_quote()
        else:
            await self.say(prompt(self.mode))

    async def _echo(self) -> None:
        text = "*" * len(self.keyed.text) if self.mode in MASKED else self.keyed.text
        standing = prompt(self.mode)
        await self.show(self.displays.pole_lines(standing)[0], text,
                        prompt=said("keyed.echo", keyed=text, prompt=standing.long("en"),
                                    prompt_zh=standing.long("zh")))

    async def _show_member(self, view: MemberView) -> None:
        await self.say(member_said(view))

    async def _show_sale(self) -> None:
        last = self.draft.lines[-1]
        name = self.displays.show_name(last.name or last.sku)
        item = f"{last.qty}x {name}" if last.qty > 1 else name
        await self.show(self._pair(item, yuan(last.list_fen)),
                        self._pair(self._label("TOTAL"), yuan(self.draft.total_fen)),
                        prompt=self._line_said("sale.item", last))

    def _line_said(self, key: str, line: Line) -> Said:
        """A sale's line, with the sale's total after it, for the LCD: its name's Chinese or
        Latin words (a bilingual name, 可口可乐 Coca-Cola), as the LCD's language needs."""
        name = line.name or line.sku
        count = f"{line.qty}x " if line.qty > 1 else ""
        return said(key, name=Name(name), name_zh=count + chinese_name(name),
                    name_en=count + latin_name(name), amount=yuan(line.list_fen),
                    total=yuan(self.draft.total_fen))

    async def _show_quote(self) -> None:
        quote = self.quote
        assert quote is not None
        due = quote.due_fen - redemption.deduction_fen(self.rules, self.redeem_points)
        pt, due_label = self._label("PT"), self._label("DUE")
        if self.redeem_points:
            second = self._pair(f"-{self.redeem_points}{pt}", f"{due_label} {yuan(due)}")
        elif quote.max_redeem_points:
            second = self._pair(f"{self._label('MAX')} {quote.max_redeem_points}{pt}",
                                f"{due_label} {yuan(due)}")
        else:
            second = self._pair(due_label, yuan(due))
        discount = yuan(quote.discount_fen)
        await self.show(self._pair(self._label("SUBTOTAL"), yuan(quote.list_fen)), second,
                        prompt=said("quote.shown", amount=yuan(due), balance=quote.balance,
                                    discount=f" less {discount} discount"
                                    if quote.discount_fen else "",
                                    discount_zh=f"，已减会员折扣 {discount}"
                                    if quote.discount_fen else "",
                                    max=quote.max_redeem_points,
                                    deduction=yuan(quote.max_deduction_fen)))

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
        await self.say(said("manager.needed", what=what, what_zh=what_zh(what)))

    def _head(self) -> receipts.Header:
        at, _trusted = self.ledger.clock()
        return receipts.Header(self.rules.name, self.setup.store, self.setup.terminal,
                               self.operator.greeted if self.operator else "", at)

    def _stamp(self) -> str:
        return f"{self.ledger.clock()[0]:%Y%m%d%H%M%S}"

    def _print(self, doc: Document, receipt_id: str) -> None:
        self._background_task(self._print_now(doc, receipt_id))

    async def _print_now(self, doc: Document, receipt_id: str) -> None:
        printed = await self.desk.print(doc, receipt_id)
        if not printed.result.printed:
            await self.say(said("printer.kept", **problem_text(printed.result.message)))

    def _reset_sale(self) -> None:
        self.draft, self.quote, self.redeem_points = Draft(), None, 0
        self.hold = self.sale_id = None
        self.switch_to(Mode.READY)
