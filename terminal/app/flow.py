"""The cashier's flow: one state machine over keypad actions, card swipes and scans.

Inputs arrive one at a time (``inputs.TillInputs`` queues them), so each handler sees a settled
state. A handler either completes its step or refuses with a message that names the problem and
changes nothing: every refusal goes through :meth:`Till.refuse` before any state is touched.
Printing, the drawer and the displays run on their devices' threads; a receipt is printed in the
background after the sale is committed, so the next customer never waits for the printer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from terminal.app import receipts
from terminal.app.draft import Draft
from terminal.app.keyed import Keyed, parse_amount, parse_count
from terminal.app.ledger import LedgerGateway, SoldLine
from terminal.app.printing import ReceiptDesk
from terminal.app.screens import Displays, pole_name, two_lines
from terminal.drivers.barcode import parse_scan
from terminal.drivers.document import Document
from terminal.drivers.msr import InputRefused, parse_swipe
from terminal.drivers.textwidth import columns, text_width
from terminal.hqlink import Hold, HqLink, HqUnreachable, RemoteBalance
from terminal.loyalty import redemption
from terminal.loyalty.errors import InvalidInput, RedeemRefused, Refused, UnknownCard
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import MemberView, Quote, Registration, SaleResult
from terminal.loyalty.pricing import MAX_QTY, Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.ledger_store import HeldAtHq
from terminal.loyalty.store.people import SignedIn

log = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    LOCKED = "locked"  # nobody signed in: only a PIN opens the till
    READY = "ready"  # ringing up (or waiting for) a sale
    MANAGER = "manager"  # waiting for a manager's PIN to authorise an action
    REGISTER = "register"  # an unknown card: phone number keyed to register it
    SUBTOTAL = "subtotal"  # the quote is shown: redemption and tender
    REFUND_FIND = "refund_find"  # which sale: scan its receipt or key its number
    REFUND_LINES = "refund_lines"  # the whole sale or one line
    EXCHANGE = "exchange"  # goods for points
    ADJUST = "adjust"  # a manual points adjustment
    CONFIRM_Z = "confirm_z"  # closing the day
    PRICE_CHECK = "price_check"  # show a product's price, sell nothing


PROMPTS = {
    Mode.LOCKED: "Key your PIN, then Enter",
    Mode.READY: "Swipe member card, scan or key an item",
    Mode.MANAGER: "Manager PIN, then Enter (Clear cancels)",
    Mode.REGISTER: "Unknown card: key phone no. + Enter to register, Clear = no",
    Mode.SUBTOTAL: "Key points + Redeem, or pay: Cash / Card",
    Mode.REFUND_FIND: "Refund: scan receipt or key sale no. + Enter",
    Mode.REFUND_LINES: "Enter = whole sale, line no. + Enter = one line, Void = void sale",
    Mode.EXCHANGE: "Key goods no. + Enter (qty: n Quantity)",
    Mode.ADJUST: "Key points: Enter adds, Discount takes off",
    Mode.CONFIRM_Z: "Z report closes the day: Enter to confirm",
    Mode.PRICE_CHECK: "Price check: scan or key code + Enter",
}
_MASKED = (Mode.LOCKED, Mode.MANAGER)
_ACTION_LABELS = {"decimal_point": "'.'", "other_tender": "Other tender"}


@dataclass
class _Pending:
    """An action waiting for a manager's PIN, and where Clear goes back to."""

    what: str
    run: Callable[[str], Awaitable[None]]
    back_to: Mode


@dataclass(frozen=True)
class TillSetup:
    store: str
    terminal: str
    departments: tuple[str, ...]  # the category each department key sells under


class Till:
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
        self.mode = Mode.READY if operator else Mode.LOCKED
        self.keyed = Keyed()
        self.draft = Draft()
        self.quote: Quote | None = None
        self.redeem_points = 0
        self.hold: Hold | None = None
        self.sale_id: str | None = None  # reserved when points are held for this sale
        self.pending: _Pending | None = None
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

    # -- what the daemon reads -------------------------------------------------------------------

    @property
    def status(self) -> str:
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

    # -- inputs ------------------------------------------------------------------------------------

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
        handler = getattr(self, f"_{self.mode.value}_{action}", None)
        if handler is None and self.mode is not Mode.LOCKED:
            handler = getattr(self, f"_any_{action}", None)
        if handler is None:
            label = _ACTION_LABELS.get(action, action.replace("_", " ").capitalize())
            await self.refuse(f"{label} does nothing here: {PROMPTS[self.mode]}")
            return
        await handler()

    async def on_swipe(self, text: str) -> None:
        self.refused = None
        if self.mode is Mode.LOCKED:
            await self.refuse(f"Sign in first: {PROMPTS[Mode.LOCKED]}")
            return
        try:
            card = parse_swipe(text)
        except InputRefused as exc:
            await self.refuse(str(exc))
            return
        await self._identify(card.number)

    async def on_scan(self, text: str) -> None:
        self.refused = None
        if self.mode is Mode.LOCKED:
            await self.refuse(f"Sign in first: {PROMPTS[Mode.LOCKED]}")
            return
        try:
            code = parse_scan(text).code
        except InputRefused as exc:
            await self.refuse(str(exc))
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
            await self.refuse(f"Not now: {PROMPTS[self.mode]}")

    # -- showing -----------------------------------------------------------------------------------

    async def show(self, line1: str, line2: str = "", prompt: str | None = None) -> None:
        self.message = f"{line1} {line2}".strip() if prompt is None else prompt
        await self.displays.show(line1, line2, self.draft.member, prompt)

    async def say(self, text: str) -> None:
        """A sentence for the cashier, wrapped onto the pole's two lines."""
        self.message = text
        await self.displays.show(*two_lines(text, self.displays.columns), self.draft.member, text)

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
        text = "*" * len(self.keyed.text) if self.mode in _MASKED else self.keyed.text
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

    # -- clear, sign in and out, manager approval ------------------------------------------------

    async def _clear(self) -> None:
        if not self.keyed.empty:
            self.keyed.take()
        elif self.mode is Mode.MANAGER and self.pending is not None:
            self.mode, self.pending = self.pending.back_to, None
        elif self.mode is Mode.SUBTOTAL:
            await self._release_hold()
            self.quote, self.redeem_points, self.mode = None, 0, Mode.READY
        elif self.mode not in (Mode.READY, Mode.LOCKED):
            self.new_card = self.refund_sale = None
            self.units = None
            self.mode = Mode.READY
        await self._prompt()

    async def _locked_enter(self) -> None:
        pin = self.keyed.take()
        who = await self.ledger.check_pin(pin)
        if who is None:
            await self.refuse("PIN not recognised: key your PIN again, then Enter")
            return
        self.operator, self.mode = who, Mode.READY
        log.info("%s %s signed in", who.role, who.name)
        await self.say(f"Signed in: {who.name}. {PROMPTS[Mode.READY]}")

    async def _locked_sign_in_out(self) -> None:
        await self.say(PROMPTS[Mode.LOCKED])

    async def _ready_sign_in_out(self) -> None:
        if not self.draft.empty:
            await self.refuse("Finish or void the sale before signing out")
            return
        assert self.operator is not None
        log.info("%s signed out", self.operator.name)
        self.operator, self.mode = None, Mode.LOCKED
        await self.say(f"Signed out. {PROMPTS[Mode.LOCKED]}")

    async def _with_manager(self, what: str, run: Callable[[str], Awaitable[None]]) -> None:
        """Run ``run(approver)`` now if a manager is signed in, else after a manager's PIN."""
        assert self.operator is not None
        if self.operator.is_manager:
            await run(self.operator.name)
            return
        self.keyed.take()  # the PIN starts from an empty entry
        self.pending = _Pending(what, run, self.mode)
        self.mode = Mode.MANAGER
        await self.say(f"{what} needs a manager: manager PIN, then Enter")

    async def _manager_enter(self) -> None:
        pin = self.keyed.take()
        pending = self.pending
        assert pending is not None
        who = await self.ledger.check_pin(pin, "manager")
        if who is None:
            await self.refuse(f"That is not a manager PIN: {pending.what} not authorised")
            return
        self.mode, self.pending = pending.back_to, None
        log.info("manager %s authorised %s", who.name, pending.what)
        await pending.run(who.name)

    # -- the member ------------------------------------------------------------------------------

    async def _any_member(self) -> None:
        if self.keyed.empty:
            await self.say("Swipe the card, scan it, or key the member no. then Member")
            return
        await self._identify(self.keyed.take())

    async def _identify(self, number: str) -> None:
        if self.mode not in (Mode.READY, Mode.SUBTOTAL):
            await self.refuse(f"Not now: {PROMPTS[self.mode]}")
            return
        try:
            view = await self.ledger.member(number)
        except UnknownCard:
            await self._identify_elsewhere(number)
            return
        except Refused as exc:  # a payment card keyed by hand, a malformed number
            await self.refuse(str(exc))
            return
        remote = None
        if self.link.reachable:
            remote = await self.link.member_balance(self.ledger.card_hash(number))
        await self._identified(number, view, remote)

    async def _identify_elsewhere(self, number: str) -> None:
        """A card this ledger does not know: HQ may know the member from another store
        (DESIGN promise 4); if HQ cannot say, nothing changes."""
        unreachable = (f"Card ****{number[-4:]}: member not known here and HQ unreachable: "
                       "sell without points or register")
        if not self.link.reachable:
            await self.refuse(unreachable)
            return
        try:
            remote = await self.link.find_member(self.ledger.card_hash(number))
        except HqUnreachable:
            await self.refuse(unreachable)
            return
        if remote is None:
            self.new_card, self.mode = number, Mode.REGISTER
            await self.say(f"Card ****{number[-4:]} is not registered: key phone no. + Enter "
                           "to register, Clear = no")
            return
        assert self.operator is not None
        try:
            view = await self.ledger.import_member(number, remote, self.operator.name)
        except Refused as exc:  # HQ's answer does not fit the rules in force
            await self.refuse(f"Card ****{number[-4:]}: HQ's member record refused: {exc}")
            return
        self.link.events_written()
        log.info("member ****%s known at HQ: recorded here (tier %s)", number[-4:], remote.tier)
        await self._identified(number, view, remote)

    async def _identified(self, number: str, view: MemberView,
                          remote: RemoteBalance | None) -> None:
        if self.mode is Mode.SUBTOTAL and self.draft.card != number:
            await self._release_hold()
            self.redeem_points = 0
        if remote is not None:  # HQ is authoritative for the chain-wide balance and tier
            try:  # kept: the monthly review never goes below it, a higher one applies now
                await self.ledger.note_hq_tier(number, remote)
            except Refused as exc:
                log.warning("HQ's tier for ****%s not recorded: %s", number[-4:], exc)
            view = dataclasses.replace(view, balance=remote.balance, tier=remote.tier)
        self.draft.card, self.draft.member, self.draft.remote = number, view, remote
        if self.mode is Mode.SUBTOTAL:
            await self._subtotal()
        else:
            await self._show_member(view)

    async def _register_enter(self) -> None:
        phone, card = self.keyed.take(), self.new_card
        assert card is not None and self.operator is not None
        if not phone:
            await self.refuse("Key the customer's phone no., then Enter (Clear = no)")
            return
        try:
            view = await self.ledger.register(Registration(card=card, phone=phone,
                                                           operator=self.operator.name))
        except Refused as exc:
            await self.refuse(str(exc))
            return
        self.link.events_written()
        self.draft.card, self.draft.member = card, view
        self.new_card, self.mode = None, Mode.READY
        await self.show("Welcome, new member", f"Points {view.balance} {view.tier}",
                        prompt=f"Registered: {view.balance} points welcome bonus")

    async def _ready_balance(self) -> None:
        if not self.keyed.empty:
            phone = self.keyed.take()
            await self._with_manager("Phone lookup", lambda who: self._phone_lookup(phone, who))
        elif self.draft.card is not None:
            await self._statement(self.draft.card)
        else:
            await self._with_manager("X report", lambda who: self._report("X", who))

    async def _phone_lookup(self, phone: str, approver: str) -> None:
        try:
            view = await self.ledger.member_by_phone(phone, approver)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        # The phone gives the balance, not the card: a sale still needs the card itself.
        await self.show(f"Member ****{view.card_last4}", f"Points {view.balance} {view.tier}",
                        prompt=f"{view.name or 'Member'} (phone ...{view.phone_last4}): "
                               f"{view.balance} points, {view.tier}")

    async def _statement(self, card: str) -> None:
        try:
            statement = await self.ledger.statement(card)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        view: MemberView = statement["member"]
        remote = self.draft.remote
        if remote is not None:
            view = dataclasses.replace(view, balance=remote.balance, tier=remote.tier)
        self.draft.member = view
        await self._show_member(view)
        self._print(receipts.statement_receipt(self._head(), statement),
                    f"statement-{view.card_last4}-{self._stamp()}")

    # -- lines -----------------------------------------------------------------------------------

    async def _ready_enter(self) -> None:
        if self.keyed.empty:
            await self._prompt()
            return
        await self._add_product(self.keyed.take())

    async def _ready_add(self) -> None:
        if self.keyed.empty:
            await self.refuse("Key the product code first, then Add")
            return
        await self._add_product(self.keyed.take())

    async def _add_product(self, code: str) -> None:
        line = await self.ledger.find_product(code)
        if line is None:
            await self.refuse(f"Unknown product {code}: not in the catalogue")
            return
        await self._add_line(line)

    async def _scan_item_or_card(self, code: str) -> None:
        line = await self.ledger.find_product(code)
        if line is not None:
            await self._add_line(line)
            return
        try:
            await self.ledger.member(code)
        except UnknownCard:
            if not await self._known_at_hq(code):  # neither a product nor a member's card
                await self.refuse(f"Unknown product {code}: not in the catalogue")
                return
        except Refused:
            await self.refuse(f"Unknown product {code}: not in the catalogue")
            return
        await self._identify(code)

    async def _known_at_hq(self, code: str) -> bool:
        """Whether a scanned code this ledger does not know is a member card HQ knows."""
        if not self.link.reachable:
            return False
        try:
            return await self.link.find_member(self.ledger.card_hash(code)) is not None
        except HqUnreachable:
            return False

    async def _add_line(self, line: Line) -> None:
        try:
            self.draft.add(line)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self._show_sale()

    async def _department(self, number: int) -> None:
        if number > len(self.setup.departments):
            await self.refuse(f"Department {number} is not set up on this till")
            return
        try:
            fen = parse_amount(self.keyed.text, "amount")
        except Refused as exc:
            self.keyed.take()
            await self.refuse(f"{exc}, then the department key")
            return
        self.keyed.take()
        category = self.setup.departments[number - 1]
        await self._add_line(Line(sku=f"DEPT{number}", qty=1, price_fen=fen,
                                  name=f"部门{number} Dept {number}", category=category))

    async def _ready_department_1(self) -> None:
        await self._department(1)

    async def _ready_department_2(self) -> None:
        await self._department(2)

    async def _ready_quantity(self) -> None:
        if not self.draft.lines:
            self.keyed.take()
            await self.refuse("No item to change: add an item first")
            return
        try:
            qty = parse_count(self.keyed.take(), "quantity", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(f"{exc}; remove a line with its line no. + Void")
            return
        self.draft.set_quantity(len(self.draft.lines) - 1, qty)
        await self._show_sale()

    async def _ready_void(self) -> None:
        if not self.keyed.empty:
            try:
                if not self.draft.lines:
                    raise InvalidInput("the sale has no lines to remove", "void")
                number = parse_count(self.keyed.take(), "line no.", 1, len(self.draft.lines))
            except Refused as exc:
                self.keyed.take()
                await self.refuse(str(exc))
                return
            removed = self.draft.remove(number - 1)
            await self.show(self._pair(f"VOID {removed.name or removed.sku}",
                                       f"-{yuan(removed.list_fen)}"),
                            self._pair("TOTAL", yuan(self.draft.total_fen)))
            return
        if self.draft.empty:
            await self.refuse("Nothing to void: no sale in progress")
            return
        await self._with_manager("Void sale", self._void_sale)

    async def _subtotal_void(self) -> None:
        await self._with_manager("Void sale", self._void_sale)

    async def _void_sale(self, approver: str) -> None:
        await self._release_hold()
        log.info("sale in progress voided by %s (%d lines, %s)", approver,
                 len(self.draft.lines), yuan(self.draft.total_fen))
        self._reset_sale()
        await self.say("Sale voided. " + PROMPTS[Mode.READY])

    def _reset_sale(self) -> None:
        self.draft, self.quote, self.redeem_points = Draft(), None, 0
        self.hold = self.sale_id = None
        self.mode = Mode.READY

    async def _ready_price_check(self) -> None:
        if self.keyed.empty:
            self.mode = Mode.PRICE_CHECK
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
        self.mode = Mode.READY
        await self.show(pole_name(line.name), self._pair("PRICE", yuan(line.price_fen)),
                        prompt=f"{line.name}: {yuan(line.price_fen)} (not added)")

    # -- subtotal, redemption, tender ------------------------------------------------------------

    async def _ready_subtotal(self) -> None:
        if self.draft.lines:
            await self._subtotal()
        elif self.draft.member is not None:
            await self.refuse("No items in the sale yet")
        else:
            await self._with_manager("Z report", self._confirm_z)

    async def _subtotal(self) -> None:
        request = self.draft.request("quote", "cash", 0, "")
        try:
            quote = await self.ledger.quote(request, online=self.link.reachable,
                                            hq_balance=self._hq_balance())
        except Refused as exc:
            await self.refuse(str(exc))
            return
        self.quote, self.mode = quote, Mode.SUBTOTAL
        await self._show_quote()

    async def _subtotal_redeem(self) -> None:
        quote = self.quote
        assert quote is not None
        if self.draft.card is None:
            self.keyed.take()
            await self.refuse("No member: swipe the member card before redeeming")
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
                                    f"({quote.max_redeem_points})", "redeem")
            if not text and not points:
                raise RedeemRefused(f"no points may be redeemed on this sale (balance "
                                    f"{quote.balance})", "redeem")
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self._release_hold()
        if points:
            sale_id = await self.ledger.next_sale_id()
            try:
                self.hold = await self.link.hold(self.ledger.card_hash(self.draft.card), points,
                                                 sale_id)
            except Refused as exc:
                self.redeem_points = 0
                await self.refuse(str(exc))
                return
            self.sale_id = sale_id
        self.redeem_points = points
        await self._show_quote()

    def _hq_balance(self) -> int | None:
        remote = self.draft.remote
        return remote.balance if remote is not None else None

    def _held_at_hq(self, hold: Hold | None, points: int) -> HeldAtHq | None:
        """A redemption (a sale's or a goods exchange's) checked against HQ's balance, when HQ
        answered the lookup."""
        remote = self.draft.remote
        if remote is None or hold is None or not points:
            return None
        # HQ agreed to hold these points, so the member has at least them chain-wide.
        balance = remote.balance if hold.offline else max(remote.balance, hold.points)
        return HeldAtHq(balance, hold.id, hold.offline)

    def _online(self, hold: Hold | None) -> bool:
        """Whether a redemption counts as online: HQ reachable, and its hold (if any) really
        asked of HQ; an offline hold keeps to the rules' offline allowance."""
        return self.link.reachable and not (hold is not None and hold.offline)

    def _view_at_hq(self, member: MemberView, redeemed: int, earned: int = 0) -> MemberView:
        """The member as HQ will see them after this till's operation: HQ's balance less what
        was redeemed, plus what was earned (the local ledger holds only this till's share)."""
        remote = self.draft.remote
        if remote is None:
            return member
        return dataclasses.replace(member, balance=remote.balance - redeemed + earned)

    async def _release_hold(self) -> None:
        if self.hold is not None:
            hold, self.hold, self.sale_id = self.hold, None, None
            await self.link.void(hold)

    async def _ready_cash(self) -> None:
        await self._tender_from_ready("cash")

    async def _ready_card(self) -> None:
        await self._tender_from_ready("card")

    async def _ready_other_tender(self) -> None:
        await self._tender_from_ready("other")

    async def _tender_from_ready(self, tender: str) -> None:
        if not self.draft.lines:
            self.keyed.take()
            await self.refuse("No items in the sale yet")
            return
        keyed = self.keyed.take()
        await self._subtotal()
        if self.mode is Mode.SUBTOTAL:
            self.keyed.text = keyed
            await self._tender(tender)

    async def _subtotal_cash(self) -> None:
        await self._tender("cash")

    async def _subtotal_card(self) -> None:
        await self._tender("card")

    async def _subtotal_other_tender(self) -> None:
        await self._tender("other")

    async def _tender(self, tender: str) -> None:
        quote = self.quote
        assert quote is not None and self.operator is not None
        due = quote.due_fen - redemption.deduction_fen(self.rules, self.redeem_points)
        text = self.keyed.take()
        if tender == "cash" and text:
            try:
                given = parse_amount(text, "cash tendered")
            except Refused as exc:
                await self.refuse(str(exc))
                return
            if given < due:
                await self.refuse(f"Cash {yuan(given)} is less than the {yuan(due)} due")
                return
        elif text:
            await self.refuse(f"{tender.capitalize()} pays the amount due: clear the keyed "
                              f"{text} first")
            return
        else:
            given = due
        await self._commit(tender, given)

    async def _commit(self, tender: str, given: int) -> None:
        assert self.operator is not None
        sale_id = self.sale_id or await self.ledger.next_sale_id()
        request = self.draft.request(sale_id, tender, self.redeem_points, self.operator.name)
        self.committing = sale_id
        try:
            result = await self.ledger.sale(request, online=self._online(self.hold),
                                            held_at_hq=self._held_at_hq(self.hold,
                                                                        self.redeem_points))
        except Refused as exc:
            await self.refuse(str(exc))
            return
        finally:
            self.committing = None
        self.link.events_written()
        result = self._as_at_hq(result)
        change = given - result.paid_fen
        head = self._head()
        self._reset_sale()
        doc = receipts.sale_receipt(head, request, result, given, change)
        member = result.member
        self.draft.member = None
        second = f"Points {member.balance}" if member else "Thank you"
        if tender == "cash":
            first, prompt = (self._pair("CHANGE", yuan(change)),
                             f"Sale {result.id}: change {yuan(change)}")
        else:
            first, prompt = (self._pair("PAID", yuan(result.paid_fen)),
                             f"Sale {result.id} paid by {tender}")
        self._background_task(self._after_sale(doc, result.id, tender == "cash", first, prompt))
        await self.show(first, second, prompt=prompt)

    def _as_at_hq(self, result: SaleResult) -> SaleResult:
        """The sale as the member will see it at HQ (:meth:`_view_at_hq`)."""
        if result.member is None:
            return result
        return dataclasses.replace(result, member=self._view_at_hq(
            result.member, result.points_redeemed, result.points_earned))

    async def _after_sale(self, doc: Document, sale_id: str, cash: bool, first: str,
                          prompt: str) -> None:
        """Drawer and receipt after the commit. A problem with either is told to the cashier
        under the change line, which stays up: the change is what the customer is waiting for."""
        problems = []
        if cash:
            problem = await self.desk.open_drawer()
            if problem:
                problems.append(f"Open the drawer by hand: {problem}")
        printed = await self.desk.print(doc, sale_id)
        if not printed.result.printed:
            problems.append(f"Printer: {printed.result.message} (receipt kept: Reprint)")
        if problems:
            self.message = "; ".join(problems)
            short = "Drawer by hand" if len(problems) == 1 and cash and printed.result.printed \
                else "Receipt kept:Reprint"
            await self.show(first, short, prompt=f"{prompt}. {self.message}")

    # -- receipts ----------------------------------------------------------------------------------

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

    async def _ready_reprint(self) -> None:
        if not self.keyed.empty:
            try:
                number = parse_count(self.keyed.take(), "sale no.", 1, 10**9)
            except Refused as exc:
                await self.refuse(str(exc))
                return
            sale_id = self.ledger.sale_id_for(number)
            await self._with_manager("Reprint", lambda who: self._reprint(sale_id))
        elif self.desk.pending:
            results = await self.desk.reprint_pending()
            done = sum(r.printed for r in results)
            if results and not results[-1].printed:
                await self.refuse(f"Printer: {results[-1].message} ({done} printed)")
            else:
                await self.say(f"{done} kept receipt(s) printed")
        elif self.desk.last_id is not None:
            await self._reprint(self.desk.last_id)
        else:
            await self.refuse("No receipt printed yet to reprint")

    async def _reprint(self, receipt_id: str) -> None:
        lines = await self.desk.archived(receipt_id)
        if lines is None:
            await self.refuse(f"No receipt kept for {receipt_id}")
            return
        self._print(receipts.reprint(lines, receipt_id), f"{receipt_id}-copy")
        await self.say(f"Reprinting {receipt_id}")

    # -- refunds -----------------------------------------------------------------------------------

    async def _ready_refund(self) -> None:
        if not self.draft.empty:
            await self.refuse("Finish or void the sale in progress before a refund")
            return
        await self._with_manager("Refund", self._start_refund)

    async def _start_refund(self, approver: str) -> None:
        self.mode, self.units = Mode.REFUND_FIND, None
        self.approver = approver
        await self._prompt()

    async def _refund_find_enter(self) -> None:
        try:
            number = parse_count(self.keyed.take(), "sale no.", 1, 10**9)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self._find_sale(self.ledger.sale_id_for(number))

    async def _find_sale(self, sale_id: str) -> None:
        lines = await self.ledger.sold_lines(sale_id)
        if lines is None:
            await self.refuse(f"Sale {sale_id} is not recorded on this terminal")
            return
        self.refund_sale, self.refund_lines = sale_id, lines
        self.mode = Mode.REFUND_LINES
        total = sum(line.paid_fen for line in lines)
        await self.show(self._pair(sale_id[-8:], yuan(total)), f"{len(lines)} lines: Enter=all",
                        prompt=f"Sale {sale_id}, {len(lines)} lines, paid {yuan(total)}. "
                               + PROMPTS[Mode.REFUND_LINES])

    async def _refund_lines_quantity(self) -> None:
        try:
            self.units = parse_count(self.keyed.take(), "units", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self.say(f"{self.units} unit(s): now the line no. + Enter")

    async def _refund_lines_enter(self) -> None:
        await self._refund("refund")

    async def _refund_lines_void(self) -> None:
        await self._refund("void")

    async def _refund(self, kind: str) -> None:
        sale_id = self.refund_sale
        assert sale_id is not None
        text = self.keyed.take()
        request: list[tuple[str, object]] | None = None
        if text:
            try:
                number = parse_count(text, "line no.", 1, len(self.refund_lines))
            except Refused as exc:
                await self.refuse(str(exc))
                return
            line = self.refund_lines[number - 1]
            request = [(line.sku, self.units or line.qty)]
        elif self.units is not None:
            await self.refuse("Key the line no. for those units, then Enter")
            return
        try:
            result = await self.ledger.refund(sale_id, request, self.approver, kind)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        self.link.events_written()
        names = {line.sku: line.name for line in self.refund_lines}
        self.mode, self.refund_sale, self.units = Mode.READY, None, None
        self._background_task(self._after_refund(
            receipts.refund_receipt(self._head(), result, names), result.id))
        await self.show(self._pair("REFUND", yuan(result.refunded_fen)),
                        f"Points -{result.points_reversed}" if result.member else "",
                        prompt=f"{kind.capitalize()} of {sale_id}: {yuan(result.refunded_fen)} "
                               "back to the customer")

    async def _after_refund(self, doc: Document, refund_id: str) -> None:
        problem = await self.desk.open_drawer()
        if problem:
            await self.say(f"Open the drawer by hand: {problem}")
        await self._print_now(doc, refund_id)

    # -- goods exchange and adjustments ------------------------------------------------------------

    async def _ready_redeem(self) -> None:
        if self.draft.lines:
            self.keyed.take()
            await self.refuse("Press Subtotal first, then key points and Redeem")
            return
        if self.draft.card is None:
            await self.refuse("Swipe the member card first, then Redeem for goods")
            return
        if not self.rules.redeem.goods:
            await self.refuse("The rules offer no goods for points")
            return
        self.mode, self.units = Mode.EXCHANGE, None
        listing = "; ".join(f"{n} {g.name} {g.points}pt"
                            for n, g in enumerate(self.rules.redeem.goods.values(), 1))
        first = next(iter(self.rules.redeem.goods.values()))
        await self.show(self._pair(f"1 {first.name}", f"{first.points}pt"),
                        "Goods no. + Enter", prompt=f"{listing}. {PROMPTS[Mode.EXCHANGE]}")

    async def _exchange_quantity(self) -> None:
        try:
            self.units = parse_count(self.keyed.take(), "quantity", 1, MAX_QTY)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        await self.say(f"{self.units} unit(s): now the goods no. + Enter")

    async def _exchange_enter(self) -> None:
        goods = list(self.rules.redeem.goods)
        try:
            number = parse_count(self.keyed.take(), "goods no.", 1, len(goods))
        except Refused as exc:
            await self.refuse(str(exc))
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
            await self.refuse(str(exc))
            return
        exchange_id = self.ledger.new_exchange_id()
        try:
            hold = await self.link.hold(self.ledger.card_hash(card), points, exchange_id,
                                        "exchange")
        except Refused as exc:  # HQ said no: nothing is written here
            await self.refuse(f"Exchange refused: {exc}")
            return
        try:
            result = await self.ledger.exchange(
                card, sku, qty, self._online(hold), self.operator.name,
                held_at_hq=self._held_at_hq(hold, points), exchange_id=exchange_id)
        except Refused as exc:
            await self.link.void(hold)
            await self.refuse(str(exc))
            return
        except BaseException:
            await self.link.void(hold)  # not recorded (a fault, a shutdown): release HQ's hold
            raise
        self.link.events_written()
        view = self._view_at_hq(result.member, result.points)
        if self.draft.remote is not None:  # what HQ will answer once it has the exchange
            self.draft.remote = dataclasses.replace(self.draft.remote, balance=view.balance)
        result = dataclasses.replace(result, member=view)
        self.mode, self.units, self.draft.member = Mode.READY, None, result.member
        self._print(receipts.exchange_receipt(self._head(), result), f"exchange-{result.id}")
        await self.show(self._pair(f"{result.qty}x {result.name}", f"-{result.points}pt"),
                        f"Points {result.member.balance}",
                        prompt=f"Exchanged {result.qty} x {result.name} for {result.points} pts")

    async def _ready_discount(self) -> None:
        if self.draft.lines or self.draft.card is None:
            self.keyed.take()
            await self.refuse("Points adjustment: swipe the member card with no sale in progress")
            return
        await self._with_manager("Points adjustment", self._start_adjust)

    async def _start_adjust(self, approver: str) -> None:
        self.mode, self.approver = Mode.ADJUST, approver
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
            await self.refuse(str(exc))
            return
        self.link.events_written()
        self.mode, self.draft.member = Mode.READY, view
        self._print(receipts.adjustment_receipt(self._head(), view, sign * points),
                    f"adjust-{view.card_last4}-{self._stamp()}")
        await self._show_member(view)

    # -- end of day --------------------------------------------------------------------------------

    async def _confirm_z(self, approver: str) -> None:
        self.mode, self.approver = Mode.CONFIRM_Z, approver
        await self._prompt()

    async def _confirm_z_enter(self) -> None:
        self.mode = Mode.READY
        await self._report("Z", self.approver)

    async def _report(self, kind: str, approver: str) -> None:
        try:
            report = await self.ledger.report(kind, approver)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        sales = report.body["sales"]
        self._print(receipts.report_receipt(self._head(), kind, report.body),
                    f"{kind}-{report.day:%Y%m%d}-{self._stamp()}")
        await self.show(self._pair(f"{kind} {report.day:%m-%d}", f"{sales['count']} sales"),
                        self._pair("PAID", yuan(sales["paid_fen"])),
                        prompt=f"{kind} report for {report.day} printed and stored")

