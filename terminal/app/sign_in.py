"""Signing in and out with operator number + PIN, the manager's number + PIN that authorises a
pending action, and a manager unlocking an operator locked after wrong PINs."""

from __future__ import annotations

from terminal.app.catalogue import Name, prompt, said, what_zh, with_prompt
from terminal.app.keyed import parse_count
from terminal.app.modes import Mode
from terminal.app.till_base import TillBase, facts, log
from terminal.loyalty.errors import Refused
from terminal.loyalty.store.operators import MAX_NUMBER, SignedIn


class SignIn(TillBase):
    """The operator-number and PIN handlers."""

    async def _operator_number(self, then: Mode) -> None:
        """The keyed operator number: known here -> ``then`` (its PIN), else refused."""
        try:
            number = parse_count(self.keyed.take(), "operator no.", 1, MAX_NUMBER)
        except Refused as exc:
            await self.refuse(said("sign_in.bad_number", **facts(exc)))
            return
        if not await self.ledger.operator_known(number):
            await self.refuse(said("sign_in.unknown_operator", operator=number))
            return
        if then is Mode.PIN:
            self.signing = number
        else:
            self.approving = number
        self.switch_to(then)
        await self.say(with_prompt("sign_in.operator", then, operator=number))

    async def _checked_pin(self, number: int | None) -> SignedIn | None:
        """Operator ``number`` (keyed before), if the keyed PIN is theirs; else refused."""
        pin = self.keyed.take()
        assert number is not None
        if not pin:  # not a try: nothing keyed
            await self.refuse(said("sign_in.pin_needed", operator=number))
            return None
        try:
            return await self.ledger.sign_in(number, pin)
        except Refused as exc:  # a wrong PIN (counted), a lockout
            await self.refuse(exc)
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
        await self.say(with_prompt("sign_in.done", Mode.READY, who=Name(who.greeted)))

    async def _pin_void(self) -> None:
        number = self.signing
        assert number is not None
        await self._with_manager(f"Unlock operator {number}",
                                 lambda who: self._unlock(number, who))

    async def _unlock(self, number: int, approver: str) -> None:
        try:
            await self.ledger.unlock_operator(number, approver)
        except Refused as exc:
            await self.refuse(exc)
            return
        log.info("manager %s unlocked operator %d", approver, number)
        await self.say(with_prompt("sign_in.unlocked", Mode.PIN, operator=number))

    async def _locked_sign_in_out(self) -> None:
        await self.say(prompt(Mode.LOCKED))

    async def _ready_sign_in_out(self) -> None:
        if not self.draft.empty:
            await self.refuse(said("sign_out.sale_open"))
            return
        assert self.operator is not None
        log.info("%s signed out", self.operator.name)
        self.operator = None
        self.switch_to(Mode.LOCKED)
        await self.say(with_prompt("sign_out.done", Mode.LOCKED))

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
            await self.refuse(said("manager.not_manager", what=pending.what,
                                   what_zh=what_zh(pending.what)))
            self.switch_to(Mode.MANAGER)  # the next try starts from a manager's number
            return
        self.switch_to(pending.back_to)
        self.pending = None
        log.info("manager %s authorised %s", who.name, pending.what)
        await pending.run(who.name)
