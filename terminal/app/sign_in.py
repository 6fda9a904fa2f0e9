"""Signing in and out with operator number + PIN, the manager's number + PIN that authorises a
pending action, and a manager unlocking an operator locked after wrong PINs."""

from __future__ import annotations

from terminal.app.keyed import parse_count
from terminal.app.modes import PROMPTS, Mode
from terminal.app.till_base import TillBase, log
from terminal.loyalty.errors import Refused
from terminal.loyalty.store.operators import MAX_NUMBER, SignedIn


class SignIn(TillBase):
    """The operator-number and PIN handlers."""

    async def _operator_number(self, then: Mode) -> None:
        """The keyed operator number: known here -> ``then`` (its PIN), else refused."""
        try:
            number = parse_count(self.keyed.take(), "operator no.", 1, MAX_NUMBER)
        except Refused as exc:
            await self.refuse(f"{exc}: key your operator no., then Enter")
            return
        if not await self.ledger.operator_known(number):
            await self.refuse(f"Operator {number} is not known here: key your operator no., "
                              "then Enter")
            return
        if then is Mode.PIN:
            self.signing = number
        else:
            self.approving = number
        self.switch_to(then)
        await self.say(f"Operator {number}: {PROMPTS[then]}")

    async def _checked_pin(self, number: int | None) -> SignedIn | None:
        """Operator ``number`` (keyed before), if the keyed PIN is theirs; else refused."""
        pin = self.keyed.take()
        assert number is not None
        if not pin:  # not a try: nothing keyed
            await self.refuse(f"Operator {number}: key your PIN, then Enter")
            return None
        try:
            return await self.ledger.sign_in(number, pin)
        except Refused as exc:  # a wrong PIN (counted), a lockout
            await self.refuse(str(exc))
            return None

    async def _locked_enter(self) -> None:
        await self._operator_number(Mode.PIN)

    async def _pin_enter(self) -> None:
        who = await self._checked_pin(self.signing)
        if who is None:
            return
        self.operator, self.signing = who, None
        self.switch_to(Mode.READY)
        log.info("%s %s signed in", who.role, who.name)
        await self.say(f"Signed in: {who.name}. {PROMPTS[Mode.READY]}")

    async def _pin_void(self) -> None:
        number = self.signing
        assert number is not None
        await self._with_manager(f"Unlock operator {number}",
                                 lambda who: self._unlock(number, who))

    async def _unlock(self, number: int, approver: str) -> None:
        try:
            await self.ledger.unlock_operator(number, approver)
        except Refused as exc:
            await self.refuse(str(exc))
            return
        log.info("manager %s unlocked operator %d", approver, number)
        await self.say(f"Operator {number} unlocked: {PROMPTS[Mode.PIN]}")

    async def _locked_sign_in_out(self) -> None:
        await self.say(PROMPTS[Mode.LOCKED])

    async def _ready_sign_in_out(self) -> None:
        if not self.draft.empty:
            await self.refuse("Finish or void the sale before signing out")
            return
        assert self.operator is not None
        log.info("%s signed out", self.operator.name)
        self.operator = None
        self.switch_to(Mode.LOCKED)
        await self.say(f"Signed out. {PROMPTS[Mode.LOCKED]}")

    async def _manager_enter(self) -> None:
        await self._operator_number(Mode.MANAGER_PIN)

    async def _manager_pin_enter(self) -> None:
        pending = self.pending
        assert pending is not None
        who = await self._checked_pin(self.approving)
        if who is None:
            return
        self.approving = None
        if not who.is_manager:
            await self.refuse(f"That is not a manager PIN: {pending.what} not authorised")
            self.switch_to(Mode.MANAGER)  # the next try starts from a manager's number
            return
        self.switch_to(pending.back_to)
        self.pending = None
        log.info("manager %s authorised %s", who.name, pending.what)
        await pending.run(who.name)
