"""Card states: frozen and retired cards, and what HQ's member operations change in a ledger.

HQ's member operations (freeze, lost-card replacement, merge, profile edit, erasure) set a card's
state at HQ and reach every till as a signed member state (``terminal.protocol.member_state``);
both sides record it here, through :meth:`CardStates.apply_card_update`, in one transaction:

- ``card_state`` keeps the newest state per card (a card with no row is active);
- a card retired in favour of another (reported lost, or merged into another member) carries its
  member on: when this ledger holds no member on the new card, the member is re-keyed to it
  (balance, lots with their expiries, tier and history stay theirs); when it holds one, the old
  member's points move over by ledger entries (each lot as a new lot with the same expiry, any
  debt as debt), and the old card keeps its own history;
- a profile sets the member's personal data; an erased one blanks name, phone and birthday while
  the anonymous ledger and balance stay.

Points move only by new entries (DESIGN promise 2): a card's state and a member's personal data
are the mutable parts, as the materialised balance is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from terminal.loyalty import ledger
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import InvalidInput, Refused
from terminal.loyalty.store.accounts import CardRef, member_ref
from terminal.loyalty.store.member_tiers import MemberTiers
from terminal.loyalty.store.models import CardState, Member
from terminal.loyalty.store.writer import Writer

ACTIVE, FROZEN, RETIRED = "active", "frozen", "retired"
# A chain of replacements (lost, lost again, merged ...) is followed at most this far.
MAX_CHAIN = 32


@dataclass(frozen=True)
class Profile:
    name: str = ""
    birthday: str | None = None
    phone_hash: str | None = None
    phone_last4: str = ""
    erased: bool = False


@dataclass(frozen=True)
class CardUpdate:
    """One card's state as HQ set it at ``version`` (HQ's member-operation sequence)."""

    card_hash: str
    version: int
    state: str
    reason: str = ""
    replaced_by: str | None = None
    replaced_by_last4: str = ""
    tier: str | None = None
    profile: Profile | None = None
    # A till keeps no personal data of a membership merged away (HQ keeps it, with its history,
    # until the person asks for erasure).
    forget_merged: bool = False


@dataclass(frozen=True)
class CardBlock:
    """Why a card may neither earn nor redeem."""

    state: str  # frozen | retired
    reason: str
    replaced_by: str | None

    def message(self, last4: str) -> str:
        if self.state == FROZEN:
            return f"Card ****{last4} is frozen by HQ: {self.reason}"
        return f"Card ****{last4} is retired by HQ ({self.reason}): use the member's new card"


class CardBlocked(Refused):
    """The card is frozen or retired by HQ: it neither earns nor redeems."""

    def __init__(self, block: CardBlock, card4: str) -> None:
        super().__init__(block.message(card4), f"card.{block.state}")
        self.block, self.card4 = block, card4


class CardStates(MemberTiers):
    """Card states and the ledger changes HQ's member operations make."""

    def card_block(self, card: str | CardRef) -> CardBlock | None:
        """Why the card may not earn or redeem here, or None when it may."""
        row = CardState.get_or_none(CardState.card_hash == self._ref(card).hash)
        if row is None or row.state == ACTIVE:
            return None
        return CardBlock(row.state, row.reason, row.replaced_by)

    def card_version(self, card_hash: str) -> int:
        row = CardState.get_or_none(CardState.card_hash == card_hash)
        return row.version if row is not None else 0

    def successor(self, card_hash: str) -> str:
        """The card that now carries the member of ``card_hash`` (itself unless retired)."""
        for _ in range(MAX_CHAIN):
            row = CardState.get_or_none(CardState.card_hash == card_hash)
            if row is None or row.state != RETIRED or row.replaced_by is None:
                return card_hash
            card_hash = row.replaced_by
        return card_hash

    def apply_card_update(self, update: CardUpdate, moment: Moment, operator: str = "hq") -> bool:
        """Record HQ's state of a card (see the module docstring). Returns False, changing
        nothing, when the ledger holds that version or a newer one already."""
        with self._writing(moment) as w:
            return self._apply_card_update(w, update, operator)

    def apply_card_updates(self, updates: list[CardUpdate], moment: Moment) -> list[bool]:
        """:meth:`apply_card_update` for each of ``updates`` in turn, in one transaction (a
        till's catch-up applies a page of HQ's states with one commit, not one a card).

        Set-based: the page's versions held and which of its cards a member here holds are
        read in one query each, and the cards no member holds (most of a chain's: a till holds
        its store's members), whose update is their row alone, are written together in one
        statement. A card a member holds goes the whole way (:meth:`_apply_card_update`), the
        rows before it written first, so the page applies in its order, and the members are
        read again after it (a replacement or a merge re-keys them). One card at a time through
        the ORM, a page of 200 took about 100 ms of CPU beside its 60 ms of verifications
        (bench/bench_state_catch_up.py, this machine, not a Pi)."""
        cards = {update.card_hash for update in updates}
        with self._writing(moment) as w:
            held = dict(CardState.select(CardState.card_hash, CardState.version)
                        .where(CardState.card_hash.in_(cards)).tuples())
            members = self._members_of(cards)
            rows: list[CardUpdate] = []  # their card's row alone, not written yet
            changed = []
            for update in updates:
                if held.get(update.card_hash, 0) >= update.version:
                    changed.append(False)
                    continue
                held[update.card_hash] = update.version
                if update.card_hash in members:
                    self._set_card_states(w, rows)
                    rows = []
                    self._apply_card_update(w, update, "hq")
                    members = self._members_of(cards)
                else:
                    rows.append(update)
                changed.append(True)
            self._set_card_states(w, rows)
            return changed

    @staticmethod
    def _members_of(cards: set[str]) -> set[str]:
        """Which of ``cards`` a member here holds."""
        return {card for (card,) in Member.select(Member.card_hash)
                .where(Member.card_hash.in_(cards)).tuples()}

    def _apply_card_update(self, w: Writer, update: CardUpdate, operator: str) -> bool:
        """:meth:`apply_card_update` inside the write transaction ``w`` (HQ's grant of a
        campaign's bonus runs it for many cards in one: terminal.hq.member_ops.bulk)."""
        if self.card_version(update.card_hash) >= update.version:
            return False
        self._set_card_state(w, update.card_hash, update.state, update.reason,
                             update.replaced_by, update.version)
        member = self.sql.member(update.card_hash)
        if member is None:
            return True
        if update.state == RETIRED and update.replaced_by is not None:
            kept = self._carry_over(w, member, CardRef(update.replaced_by,
                                                       update.replaced_by_last4),
                                    operator, update.reason)
            if update.forget_merged and kept.id != member.id:
                self._set_profile(member, Profile())
            return True
        if update.profile is not None:
            self._set_profile(member, update.profile)
        if update.tier is not None and update.tier in {t.name for t in self.rules.tiers}:
            self._record_hq_tier(w, member, update.tier)
        self._audit(w, operator, f"card_{update.state}", member.id,
                    f"v{update.version} {update.reason}"[:200])
        return True

    def open_account(self, card: str | CardRef, profile: Profile, tier: str, points: int,
                     expires_at: datetime | None, reason: str, operator: str,
                     moment: Moment) -> Member:
        """A member carried over from another system: their profile and tier as given, no
        registration bonus, and an opening balance as one ``adjust`` lot expiring at
        ``expires_at`` (by the rules from now when None)."""
        ref = member_ref(self.card_key, card)
        if tier not in {level.name for level in self.rules.tiers}:
            raise InvalidInput(f"tier {tier!r} is not a tier of the rules in force", "tier")
        if isinstance(points, bool) or not isinstance(points, int) or points < 0:
            raise InvalidInput(f"an opening balance is a whole number of points from 0, not "
                               f"{points!r}", "points")
        with self._writing(moment) as w:
            member = self._create_at_tier(
                w, ref, tier, moment, where="", rule="card", name=profile.name,
                phone_hash=profile.phone_hash, phone_last4=profile.phone_last4,
                birthday=profile.birthday)
            if points:
                account = ledger.Account()
                entry = ledger.Entry(kind=ledger.ADJUST, points=points, reason=reason,
                                     operator=operator)
                if expires_at is None:
                    entry = self._credit_entry(account, entry, moment)
                else:
                    entry = account.credit(entry, moment.earn_time, expires_at)
                self._write_entry(w, member, entry)
                self._save_account(member, account)
            self._audit(w, operator, "open_account", member.id,
                        f"tier {tier}, {points} points: {reason}"[:200])
        return member

    @staticmethod
    def _set_card_states(w: Writer, updates: list[CardUpdate]) -> None:
        """The cards' rows as :meth:`_set_card_state` writes each, in one statement."""
        if not updates:
            return
        (CardState.insert_many(
            [(u.card_hash, u.state, u.reason, u.replaced_by, u.version, w.us) for u in updates],
            fields=[CardState.card_hash, CardState.state, CardState.reason,
                    CardState.replaced_by, CardState.version, CardState.updated_us])
         .on_conflict(conflict_target=[CardState.card_hash],
                      preserve=[CardState.state, CardState.reason, CardState.replaced_by,
                                CardState.version, CardState.updated_us])
         .execute())

    def _set_card_state(self, w: Writer, card_hash: str, state: str, reason: str,
                        replaced_by: str | None, version: int) -> None:
        CardState.insert(card_hash=card_hash, state=state, reason=reason,
                         replaced_by=replaced_by, version=version, updated_us=w.us
                         ).on_conflict(conflict_target=[CardState.card_hash], update={
                             CardState.state: state, CardState.reason: reason,
                             CardState.replaced_by: replaced_by, CardState.version: version,
                             CardState.updated_us: w.us}).execute()

    @staticmethod
    def _set_profile(member: Member, profile: Profile) -> None:
        Member.update(name=profile.name, birthday=profile.birthday,
                      phone_hash=profile.phone_hash, phone_last4=profile.phone_last4
                      ).where(Member.id == member.id).execute()

    def _carry_over(self, w: Writer, old: Member, new: CardRef, operator: str,
                    reason: str) -> Member:
        """The member of a retired card goes on under ``new``: re-keyed if no member holds
        ``new`` here, else merged into that member. Returns the member now on ``new``."""
        target = self.sql.member(new.hash)
        if target is None:
            Member.update(card_hash=new.hash, card_last4=new.last4 or old.card_last4
                          ).where(Member.id == old.id).execute()
            self._audit(w, operator, "card_replaced", old.id,
                        f"card ****{old.card_last4} -> ****{new.last4}: {reason}"[:200])
            return Member.get_by_id(old.id)
        self._move_points(w, old, target, operator, reason)
        return target

    def _move_points(self, w: Writer, source: Member, target: Member, operator: str,
                     reason: str) -> None:
        """Every point of ``source`` to ``target`` by new entries: each open lot becomes a lot
        of the target with the same earn and expiry dates; the source's debt becomes the
        target's. Both balances stay the sum of their entries."""
        src, dst = self._account(source), self._account(target)
        debt = src.debt
        parts = [(lot.earned_at, lot.expires_at, lot.remaining) for lot in src.open_lots()]
        out = f"merged into card ****{target.card_last4}: {reason}"[:200]
        into = f"merged from card ****{source.card_last4}: {reason}"[:200]
        moved = sum(points for _, _, points in parts)
        if moved:
            self._write_entry(w, source, src.debit(
                ledger.Entry(kind=ledger.ADJUST, points=-moved, reason=out, operator=operator),
                allow_debt=False))
            for earned_at, expires_at, points in parts:
                self._write_entry(w, target, dst.credit(
                    ledger.Entry(kind=ledger.ADJUST, points=points, reason=into,
                                 operator=operator),
                    earned_at, expires_at))
        if debt:
            self._write_entry(w, source, src.credit(
                ledger.Entry(kind=ledger.ADJUST, points=debt, reason=out, operator=operator),
                w.moment.at, None))
            self._write_entry(w, target, dst.debit(
                ledger.Entry(kind=ledger.ADJUST, points=-debt, reason=into, operator=operator),
                allow_debt=True))
        self._save_account(source, src)
        self._save_account(target, dst)
        self._audit(w, operator, "member_merged", target.id,
                    f"{source.id} ({moved} points, debt {debt}): {reason}"[:200])
