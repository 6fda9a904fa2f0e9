"""Signing in and out, and the manager's PIN that authorises a pending action."""

from __future__ import annotations

from terminal.app.modes import PROMPTS, Mode
from terminal.app.till_base import TillBase, log


class SignIn(TillBase):
    """The PIN handlers."""

    async def _locked_enter(self) -> None:
        pin = self.keyed.take()
        who = await self.ledger.check_pin(pin)
        if who is None:
            await self.refuse("PIN not recognised: key your PIN again, then Enter")
            return
        self.operator = who
        self.switch_to(Mode.READY)
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
        self.operator = None
        self.switch_to(Mode.LOCKED)
        await self.say(f"Signed out. {PROMPTS[Mode.LOCKED]}")

    async def _manager_enter(self) -> None:
        pin = self.keyed.take()
        pending = self.pending
        assert pending is not None
        who = await self.ledger.check_pin(pin, "manager")
        if who is None:
            await self.refuse(f"That is not a manager PIN: {pending.what} not authorised")
            return
        self.switch_to(pending.back_to)
        self.pending = None
        log.info("manager %s authorised %s", who.name, pending.what)
        await pending.run(who.name)
