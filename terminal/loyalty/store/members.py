"""Members: registration, import of a member HQ knows, lookups by card and by phone, and the
member view a till shows.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from terminal.core.pan import is_payment_pan
from terminal.loyalty import ledger, tiers
from terminal.loyalty.calendar import local_day
from terminal.loyalty.cards import phone_hash
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import DuplicateId, InvalidInput, PaymentCardRefused, UnknownCard
from terminal.loyalty.ids import new_id
from terminal.loyalty.operations import Balance, Expiring, MemberView, Registration
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.accounts import CardRef, member_ref, shown_card, shown_card_values
from terminal.loyalty.store.hotpath import MemberRow
from terminal.loyalty.store.member_tiers import MemberTiers
from terminal.loyalty.store.models import Member

PHONE = re.compile(r"\+?[0-9]{5,15}")
CONSENT_CHANNELS = ("sms",)  # what a till asks: a keypad has no email address


def check_phone(phone: object, field: str) -> str:
    """A phone number as a member's key: 5 to 15 digits, maybe after a +, and no payment card
    number (a Luhn-valid number in a payment range, an Amex's 15 digits too). The refusal never
    repeats what was keyed: it may be a card number, and it shows on the customer's display."""
    if not isinstance(phone, str) or not PHONE.fullmatch(phone):
        raise InvalidInput("a phone number is 5 to 15 digits, maybe after a +", field,
                           why="phone.form")
    if is_payment_pan(phone.removeprefix("+")):
        raise PaymentCardRefused("this is a payment card number, not a phone number", field)
    return phone


class Members(MemberTiers):
    """Registering, importing and looking up members."""

    def register(self, reg: Registration, moment: Moment) -> MemberView:
        """Register a member; ``reg.card`` may be a :class:`CardRef` (HQ registers by hash)."""
        ref = member_ref(self.card_key, reg.card)
        hashed = ref.hash
        number = shown_card(reg.card, ref)
        name = (reg.name or "").strip()
        if len(name) > 64:
            raise InvalidInput("a member name is at most 64 characters", "register.name",
                               most=64)
        phone = reg.phone
        if phone is not None:
            check_phone(phone, "register.phone")
        today = local_day(moment.at, self.rules.zone)
        if reg.birthday is not None and not date(1900, 1, 1) <= reg.birthday <= today:
            raise InvalidInput(f"birthday {reg.birthday} is not a past date", "register.birthday",
                               birthday=str(reg.birthday))
        with self._writing(moment) as w:
            if self.sql.member(hashed) is not None:
                raise DuplicateId(f"card {number} is already registered", "register.card",
                                  why="card.member", **shown_card_values(reg.card, ref))
            phone_key = phone_hash(self.card_key, phone) if phone else None
            if phone_key and Member.get_or_none(Member.phone_hash == phone_key):
                raise DuplicateId(
                    f"phone ending {phone[-4:]} is already registered to another member",
                    "register.phone", why="phone.taken", phone4=phone[-4:],
                )
            referrer = self._member(reg.referrer_card) if reg.referrer_card else None
            review = tiers.due_review(self.rules, None, moment.earn_time)
            member = MemberRow(
                id=new_id(),
                card_hash=hashed,
                card_last4=ref.last4,
                name=name,
                phone_hash=phone_key,
                phone_last4=phone[-4:] if phone else "",
                birthday=reg.birthday.isoformat() if reg.birthday else None,
                referrer_id=referrer.id if referrer else None,
                referral_paid=False,
                registered_us=w.us,
                tier=self.rules.tiers[0].name,
                tier_reviewed_us=to_micros(review) if review else None,
                balance=0,
                debt=0,
            )
            self.sql.run(hotpath.INSERT_MEMBER, [getattr(member, column)
                                                 for column in hotpath.MEMBER_COLUMNS])
            bonus = self.rules.earn.bonus_registration
            if bonus:
                account = ledger.Account()
                self._credit(w, member, account, ledger.BONUS, bonus, reason="registration")
                self._save_account(member, account)
            self._event(w, "register", {
                "member": member.id,
                "card_hash": hashed,
                "card_last4": ref.last4,
                "name": name,
                "phone_hash": phone_key,
                "phone_last4": member.phone_last4,
                "birthday": member.birthday,
                "referrer": referrer.id if referrer else None,
                "referrer_card_hash": referrer.card_hash if referrer else None,
                "bonus": bonus,
            })
            self._audit(w, reg.operator, "register", member.id, "")
        return self.member_view(member, moment) if self.views else self._written_view(member)

    def import_member(self, card: str | CardRef, tier: str, moment: Moment,
                      operator: str = "") -> MemberView:
        """Record a member HQ already knows (registered at another store) so this till can
        serve them: HQ's tier, no registration bonus, a local balance of 0 (their points live
        at HQ), and an ``import`` event that HQ links to the member it holds instead of
        registering them again (DESIGN promise 4)."""
        ref = member_ref(self.card_key, card)
        if tier not in {level.name for level in self.rules.tiers}:
            raise InvalidInput(f"HQ's tier {tier!r} is not a tier of the rules in force",
                               "import.tier", tier=tier)
        with self._writing(moment) as w:
            member = self._create_at_tier(w, ref, tier, moment, where=" here", rule="import.card")
            self._record_hq_tier(w, member, tier)
            self._event(w, "import", {"member": member.id, "card_hash": ref.hash, "tier": tier})
            self._audit(w, operator, "import", member.id, f"known at HQ, tier {tier}")
        return self.member_view(member, moment)

    def consent(self, card: str | CardRef, channel: str, granted: bool, address: str | None,
                operator: str, moment: Moment) -> None:
        """The member's answer at the till to member care's question (may HQ send them
        ``channel``'s care messages?): a ``consent`` event to HQ, which records it with its
        source (docs/member-care.md). A yes carries the address, which must be the member's
        registered phone for ``sms``; the till keeps it only in the event's outbox row, and
        drops it from there once HQ has acknowledged the event (outbox.mark_acked). A no
        carries none. Nothing else is kept here: HQ's consent record is the one that counts."""
        if channel not in CONSENT_CHANNELS:
            raise InvalidInput(f"no care channel {channel!r} at a till", "consent.channel",
                               channel=channel)
        ref = member_ref(self.card_key, card)
        member = self._member(ref)
        if granted:
            phone = check_phone(address, "consent.address")
            if member.phone_hash is None or phone_hash(self.card_key, phone) != member.phone_hash:
                raise InvalidInput("an SMS opt-in needs the member's registered phone",
                                   "consent.address", why="consent.address")
        with self._writing(moment) as w:
            self._event(w, "consent", {
                "member": member.id, "card_hash": ref.hash, "card_last4": ref.last4,
                "channel": channel, "granted": granted,
                "address": address if granted else None, "operator": operator,
            })
            self._audit(w, operator, "consent", member.id,
                        f"{channel} {'opt-in' if granted else 'opt-out'}")

    def balance(self, card: str) -> Balance:
        """The member's balance and tier as stored: the fast path for a swipe or a scan."""
        member = self._member(card)
        return Balance(member.name, member.tier, member.balance, member.debt)

    def member(self, card: str | CardRef, moment: Moment) -> MemberView:
        member = self._member(card)
        return self.member_view(member, moment)

    def member_by_phone(self, phone: str, actor: str, moment: Moment) -> MemberView:
        """Look a member up by phone: needs a named actor and is written to the audit trail."""
        if not actor:
            raise InvalidInput("a phone lookup needs the operator's name", "lookup.operator")
        check_phone(phone, "lookup.phone")
        member = Member.get_or_none(Member.phone_hash == phone_hash(self.card_key, phone))
        with self._writing(moment) as w:
            self._audit(w, actor, "lookup_phone", member.id if member else "", phone[-4:])
        if member is None:
            raise UnknownCard(f"no member has the phone ending {phone[-4:]}", "lookup.phone",
                              why="phone.unknown", phone4=phone[-4:])
        return self.member_view(member, moment)

    def standing(self, member: Member, moment: Moment) -> tuple[str, int]:
        """The member's tier and balance as shown at the moment: the tier every review due by
        then has decided, and the balance without the points of lots expired by then, whether
        or not an entry has recorded their expiry yet (rules.toml [tiers], [expiry])."""
        tier, _ = self._reviewed_tier(member, moment)
        return tier, member.balance - self._due_unswept(member, moment)

    @staticmethod
    def _written_view(member: MemberRow) -> MemberView:
        """A new member's view as its row was written, without reading (``views`` off: HQ
        replaying a registration uses the id): no spend, nothing expiring listed."""
        return MemberView(
            id=member.id, card_last4=member.card_last4, name=member.name,
            phone_last4=member.phone_last4,
            birthday=date.fromisoformat(member.birthday) if member.birthday else None,
            tier=member.tier, balance=member.balance, debt=member.debt, qualifying_spend_fen=0,
            next_tier=None, spend_to_next_fen=None, expiring=[])

    def member_view(
        self, member: Member, moment: Moment, spend: int | None = None
    ) -> MemberView:
        rules = self.rules
        at = moment.earn_time
        if spend is None:
            spend = self._spend(member.id, self._window_start(at), at)
        tier, balance = self.standing(member, moment)
        nxt = tiers.next_tier(rules, tier)
        horizon = at + timedelta(days=rules.expiry.remind_days)
        expiring = [
            Expiring(remaining, from_micros(expires_us).astimezone(rules.zone))
            for remaining, expires_us in self.sql.run(
                hotpath.EXPIRING, (member.id, self._micros(at), to_micros(horizon))
            ).fetchall()
        ]
        return MemberView(
            id=member.id,
            card_last4=member.card_last4,
            name=member.name,
            phone_last4=member.phone_last4,
            birthday=date.fromisoformat(member.birthday) if member.birthday else None,
            tier=tier,
            balance=balance,
            debt=member.debt,
            qualifying_spend_fen=spend,
            next_tier=nxt.name if nxt else None,
            spend_to_next_fen=max(0, nxt.qualify_spend_fen - spend) if nxt else None,
            expiring=expiring,
        )
