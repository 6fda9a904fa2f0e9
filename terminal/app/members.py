"""The member at the till: identified by card (here or at HQ), registered, looked up by phone,
and their statement.
"""

from __future__ import annotations

import dataclasses

from terminal.app import receipts
from terminal.app.catalogue import said, with_prompt
from terminal.app.hqlink import CardStoppedAtHq, HqUnreachable, RemoteBalance
from terminal.app.modes import Mode
from terminal.app.subtotal import Subtotal
from terminal.app.tier_words import TierName
from terminal.app.till_base import facts, log
from terminal.loyalty.errors import Refused, UnknownCard
from terminal.loyalty.operations import MemberView, Registration


class Members(Subtotal):
    """Identifying, registering and looking up members."""

    async def _any_member(self) -> None:
        if self.keyed.empty:
            await self.say(said("member.how"))
            return
        await self._identify(self.keyed.take())

    async def _identify(self, number: str) -> None:
        if self.mode not in (Mode.READY, Mode.SUBTOTAL):
            await self.refuse(with_prompt("not_now", self.mode))
            return
        try:
            # HQ froze or retired the card (lost, merged): no points either way, and why.
            blocked = await self.ledger.card_block(number)
            if blocked is not None:
                await self.refuse(said(f"card.{blocked.state}", card4=number[-4:],
                                       reason=blocked.reason))
                return
            view = await self.ledger.member(number)
        except UnknownCard:
            await self._identify_elsewhere(number)
            return
        except Refused as exc:  # a payment card keyed by hand, a malformed number
            await self.refuse(exc)
            return
        remote = None
        if self.link.reachable:
            try:
                remote = await self.link.member_balance(self.ledger.card_hash(number))
            except CardStoppedAtHq as exc:
                await self._stopped_at_hq(number, exc)
                return
        await self._identified(number, view, remote)

    async def _stopped_at_hq(self, number: str, stopped: CardStoppedAtHq) -> None:
        """HQ stopped the card before its signed word reached this till: refused as a card
        this till knows stopped is (nothing changes; the word comes with the member states)."""
        log.info("card ****%s %s at HQ (%s): refused", number[-4:], stopped.state,
                 stopped.reason)
        await self.refuse(said(f"card.{stopped.state}", card4=number[-4:],
                               reason=stopped.reason))

    async def _identify_elsewhere(self, number: str) -> None:
        """A card this ledger does not know: HQ may know the member from another store
        (DESIGN promise 4); if HQ cannot say, nothing changes."""
        unreachable = said("member.unreachable", card4=number[-4:])
        if not self.link.reachable:
            await self.refuse(unreachable)
            return
        try:
            remote = await self.link.find_member(self.ledger.card_hash(number))
        except HqUnreachable:
            await self.refuse(unreachable)
            return
        except CardStoppedAtHq as exc:  # not a new card to register
            await self._stopped_at_hq(number, exc)
            return
        if remote is None:
            self.new_card = number
            self.switch_to(Mode.REGISTER)
            await self.say(said("member.unregistered", card4=number[-4:]))
            return
        assert self.operator is not None
        try:
            view = await self.ledger.import_member(number, remote, self.operator.name)
        except Refused as exc:  # HQ's answer does not fit the rules in force
            await self.refuse(said("member.hq_refused", card4=number[-4:], **facts(exc)))
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
            await self.refuse(said("member.phone_needed"))
            return
        try:
            view = await self.ledger.register(Registration(card=card, phone=phone,
                                                           operator=self.operator.name))
        except Refused as exc:
            await self.refuse(exc)
            return
        self.link.events_written()
        self.draft.card, self.draft.member = card, view
        self.new_card = None
        # Member care's question (docs/member-care.md): the customer answers on the keypad,
        # 1 yes, 0 no; Clear skips it, and no answer is no consent.
        self.care_phone = phone
        self.switch_to(Mode.CONSENT)
        await self.say(said("member.welcome_consent", points=view.balance))

    async def _consent_enter(self) -> None:
        answer, card, phone = self.keyed.take(), self.draft.card, self.care_phone
        if answer not in ("0", "1"):
            await self.refuse(said("consent.answer_needed"))
            return
        assert card is not None and phone is not None and self.operator is not None
        granted = answer == "1"
        self.care_phone = None
        self.switch_to(Mode.READY)
        try:
            await self.ledger.consent(card, "sms", granted, phone if granted else None,
                                      self.operator.name)
        except Refused as exc:
            await self.refuse(exc)
            return
        self.link.events_written()
        log.info("member ****%s answered care's SMS question: %s", card[-4:],
                 "yes" if granted else "no")
        await self.say(said("consent.yes" if granted else "consent.no"))

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
            await self.refuse(exc)
            return
        # The phone gives the balance, not the card: a sale still needs the card itself.
        await self.say(said("member.by_phone", name=view.name or self._label("MEMBER"),
                            phone4=view.phone_last4, card4=view.card_last4,
                            points=view.balance, tier=TierName(view.tier)))

    async def _statement(self, card: str) -> None:
        try:
            statement = await self.ledger.statement(card)
        except Refused as exc:
            await self.refuse(exc)
            return
        view: MemberView = statement["member"]
        remote = self.draft.remote
        if remote is not None:
            view = dataclasses.replace(view, balance=remote.balance, tier=remote.tier)
        self.draft.member = view
        await self._show_member(view)
        self._print(receipts.statement_receipt(self._head(), statement),
                    f"statement-{view.card_last4}-{self._stamp()}")
