"""Member operations made at HQ: the service the console and ``posterm-hq member`` call.

Each operation takes the card (a card number, or a :class:`CardRef` when only its hash is
known), the acting user's name and a reason, and either returns an :class:`OpResult` or raises a
:class:`~terminal.hq.member_ops.errors.MemberOpError` subclass having changed nothing. In one HQ
write transaction it:

1. appends a ``member_op`` row (who, when, what, why; its ``seq`` is HQ's operation order);
2. makes the ledger change by new entries only (an adjustment, a merge's transfers) through the
   terminal's own store, whose audit rows record it too;
3. sets the state of every card it touches to version ``seq`` (``card_state``).

The member-state publisher (:mod:`.publish`, run by the collectors) then signs each changed
card's state and publishes it to every till; tills apply it through the same store
code (:meth:`LedgerStore.apply_card_update`), so no till disagrees with HQ.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

from peewee import Database, fn

from terminal.hq.bundles import read_toml
from terminal.hq.care import consent as care_consent
from terminal.hq.care.models import CARE_MODELS
from terminal.hq.chain_ledger import HQ_IDENTITY
from terminal.hq.database import lock_members, open_hq_database, writing
from terminal.hq.member_ops.errors import (
    CardInUse,
    CardRetired,
    InvalidRequest,
    LedgerRefused,
    UnknownMember,
    WrongState,
)
from terminal.hq.member_ops.import_csv import read_rows
from terminal.hq.models import HQ_MODELS, MemberHome, MemberOp
from terminal.loyalty import tiers
from terminal.loyalty.cards import phone_hash
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.accounts import CardRef, member_ref
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.card_states import (
    ACTIVE,
    FROZEN,
    RETIRED,
    CardUpdate,
    Profile,
)
from terminal.loyalty.store.members import PHONE
from terminal.loyalty.store.models import MODELS, CardState, Member

MAX_REASON = 200
MAX_ACTOR = 64


@dataclass(frozen=True)
class OpResult:
    """What an operation did: its place in HQ's order, the member and card it leaves."""

    seq: int
    kind: str
    member: str  # the member's id in the chain ledger
    card_hash: str  # the member's card after the operation
    card_last4: str
    state: str  # active | frozen
    balance: int
    tier: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class ImportResult:
    members: int
    points: int
    first_seq: int
    last_seq: int


@dataclass
class _Op:
    """One operation in progress inside its transaction."""

    seq: int
    moment: Moment
    actor: str
    reason: str


def _now() -> datetime:
    return datetime.now(UTC)


def _clean(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"a member operation needs {what}", what.split()[-1])
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise InvalidRequest(f"{what} must be printable text of at most {limit} characters",
                             what.split()[-1])
    return value


class MemberOps:
    """HQ's member operations over one chain database (SQLite or PostgreSQL).

    ``clock`` gives HQ's time (NTP-synchronised, trusted); tests pass their own.
    """

    def __init__(self, db: Database, rules: Rules, card_key: bytes,
                 clock: Callable[[], datetime] = _now) -> None:
        self.db = db
        self.rules = rules
        self.card_key = card_key
        self.clock = clock
        self.store = LedgerStore(db, rules, card_key, HQ_IDENTITY, outbox=False)

    @classmethod
    def open(cls, db_url: str, rules_path: Path, card_key_path: Path) -> MemberOps:
        rules = Rules.from_mapping(read_toml(rules_path))
        return cls(open_hq_database(db_url), rules, card_key_path.read_bytes().strip())

    def close(self) -> None:
        self.db.close()

    # -- the operations ------------------------------------------------------------------------

    def adjust(self, card: str | CardRef, points: int, *, actor: str, reason: str) -> OpResult:
        """Add (or, negative, take) points with the reason; never overdraws the member."""
        if isinstance(points, bool) or not isinstance(points, int) or points == 0:
            raise InvalidRequest(f"an adjustment is a non-zero whole number of points, not "
                                 f"{points!r}", "points")
        with self._operation(actor, reason) as op:
            member = self._live_member(card)
            try:
                self.store.adjust(CardRef(member.card_hash), points, op.reason, op.actor,
                                  op.moment)
            except Refused as exc:
                raise LedgerRefused(str(exc), "points") from None
            return self._done(op, "adjust", member, {"points": points})

    def freeze(self, card: str | CardRef, *, actor: str, reason: str) -> OpResult:
        """Freeze the card: it neither earns nor redeems at any till until unfrozen."""
        with self._operation(actor, reason) as op:
            member = self._live_member(card)
            if self._state(member.card_hash) == FROZEN:
                raise WrongState(f"card ****{member.card_last4} is already frozen", "card")
            return self._done(op, "freeze", member, {}, state=FROZEN)

    def unfreeze(self, card: str | CardRef, *, actor: str, reason: str) -> OpResult:
        with self._operation(actor, reason) as op:
            member = self._live_member(card)
            if self._state(member.card_hash) != FROZEN:
                raise WrongState(f"card ****{member.card_last4} is not frozen", "card")
            return self._done(op, "unfreeze", member, {}, state=ACTIVE)

    def replace_card(self, lost: str | CardRef, new: str | CardRef, *, actor: str,
                     reason: str) -> OpResult:
        """The card was reported lost: the member goes on under ``new`` (a card no one holds)
        with their balance, lots and expiries, tier and history; ``lost`` is refused at every
        till from now on. A frozen card may be replaced; the new card starts active."""
        with self._operation(actor, reason) as op:
            member = self._live_member(lost)
            fresh = self._unused(new)
            old = CardRef(member.card_hash, member.card_last4)
            self._set(op, old.hash, RETIRED, replaced_by=fresh)  # re-keys the member
            return self._done(op, "replace", Member.get_by_id(member.id),
                              {"lost_card": f"****{old.last4}", "lost_card_hash": old.hash,
                               "new_card": f"****{fresh.last4}"}, state=ACTIVE)

    def merge(self, survivor: str | CardRef, duplicate: str | CardRef, *, actor: str,
              reason: str) -> OpResult:
        """One person holds two memberships: ``duplicate``'s points move to ``survivor`` (each
        lot with its expiry, any debt as debt), the survivor keeps the higher tier, and the
        duplicate's card is retired (refused at every till; its history stays under it)."""
        with self._operation(actor, reason) as op:
            kept, gone = self._live_member(survivor), self._live_member(duplicate)
            if kept.id == gone.id:
                raise InvalidRequest("a member cannot be merged into itself", "duplicate")
            moved, debt = gone.balance, gone.debt
            if tiers.rank(self.rules, gone.tier) > tiers.rank(self.rules, kept.tier):
                Member.update(tier=gone.tier).where(Member.id == kept.id).execute()
            self._set(op, gone.card_hash, RETIRED,
                      replaced_by=CardRef(kept.card_hash, kept.card_last4))  # moves the points
            return self._done(op, "merge", Member.get_by_id(kept.id),
                              {"merged_member": gone.id, "merged_card": f"****{gone.card_last4}",
                               "merged_card_hash": gone.card_hash, "points": moved,
                               "debt": debt})

    def edit_profile(self, card: str | CardRef, *, actor: str, reason: str,
                     name: str | None = None, phone: str | None = None,
                     birthday: str | None = None) -> OpResult:
        """Change the member's name, phone or birthday (those given; "" clears one). The
        operation's record names the fields changed, never their values (an erasure must be
        able to remove every trace of them)."""
        changes = {key: value for key, value in
                   (("name", name), ("phone", phone), ("birthday", birthday)) if value is not None}
        if not changes:
            raise InvalidRequest("a profile edit needs a name, phone or birthday", "profile")
        with self._operation(actor, reason) as op:
            member = self._live_member(card)
            profile = self._profile(member)
            if name is not None:
                name = name.strip()
                if len(name) > 64 or (name and not name.isprintable()):
                    raise InvalidRequest("a member name is printable text of at most 64 "
                                         "characters", "name")
                profile = dataclasses.replace(profile, name=name)
            if phone is not None:
                profile = dataclasses.replace(profile, **self._phone(phone, member))
            if birthday is not None:
                profile = dataclasses.replace(
                    profile, birthday=check_birthday(birthday, op.moment.at.date())
                    if birthday else None)
            return self._done(op, "edit", member, {"fields": sorted(changes)}, profile=profile)

    def erase(self, card: str | CardRef, *, actor: str, reason: str) -> OpResult:
        """The member asked for their personal data to go: name, phone and birthday are
        blanked at HQ and at every till holding the member; the card, the anonymous ledger and
        the balance stay."""
        with self._operation(actor, reason) as op:
            member = self._live_member(card)
            merged = [json.loads(row.detail)["merged_member"] for row in MemberOp.select()
                      .where((MemberOp.member == member.id) & (MemberOp.kind == "merge"))]
            if merged:  # the same person's memberships merged into this one
                Member.update(name="", phone_hash=None, phone_last4="", birthday=None).where(
                    Member.id.in_(merged)).execute()
            with bound(self.db, CARE_MODELS):  # no care message, no contact kept
                for person in [member.id, *merged]:
                    care_consent.forget(person)
            return self._done(op, "erase", member, {"merged_members": len(merged)},
                              profile=Profile(erased=True))

    def import_members(self, text: str, *, actor: str, reason: str) -> ImportResult:
        """Members moving from another system (CSV, see :mod:`.import_csv`): each with their
        profile, tier and opening balance, no registration bonus; every row is checked first
        and one problem (a duplicate included) imports nothing."""
        with self._operation(actor, reason) as op:
            rows = read_rows(text, self.rules, self.card_key, op.moment.at)
            points = 0
            for number, row in enumerate(rows):
                member = self.store.open_account(
                    row.card, row.profile, row.tier, row.points, row.expires_at,
                    f"opening balance: {op.reason}"[:MAX_REASON], op.actor, op.moment)
                if row.store is not None:
                    MemberHome.insert(member=member.id, store=row.store,
                                      since_us=to_micros(op.moment.at)).execute()
                MemberOp.create(seq=op.seq + number, kind="import", member=member.id,
                                card_hash=member.card_hash, actor=op.actor, reason=op.reason,
                                detail=json.dumps({"line": row.line, "points": row.points,
                                                   "tier": row.tier, "store": row.store},
                                                  sort_keys=True),
                                at_us=to_micros(op.moment.at))
                points += row.points
            return ImportResult(len(rows), points, op.seq, op.seq + len(rows) - 1)

    # -- the frame every operation shares ------------------------------------------------------

    @contextmanager
    def _operation(self, actor: str, reason: str) -> Iterator[_Op]:
        """Checked inputs, then one HQ write transaction with the models bound; a refusal
        inside rolls everything back."""
        actor = _clean(actor, "the acting user's name as actor", MAX_ACTOR)
        reason = _clean(reason, "a reason", MAX_REASON)
        with bound(self.db, MODELS + HQ_MODELS), writing(self.db):
            seq = int(MemberOp.select(fn.COALESCE(fn.MAX(MemberOp.seq), 0)).scalar()) + 1
            yield _Op(seq, Moment(self.clock(), True, None), actor, reason)

    def _member(self, card: str | CardRef) -> Member:
        try:
            ref = member_ref(self.card_key, card)
        except Refused as exc:
            raise InvalidRequest(str(exc), "card") from None
        # The member's writers (collectors' batches, holds) wait for this operation's commit.
        lock_members(self.db, [ref.hash])
        member = Member.get_or_none(Member.card_hash == ref.hash)
        if member is None:
            refuse_absent(ref, CardState.get_or_none(CardState.card_hash == ref.hash))
        return member

    def _live_member(self, card: str | CardRef) -> Member:
        """The member on a card that is not retired."""
        member = self._member(card)
        refuse_retired(member.card_last4, self._state(member.card_hash))
        return member

    def _unused(self, card: str | CardRef) -> CardRef:
        """A card no member holds and HQ never retired: what a replacement must be."""
        try:
            ref = member_ref(self.card_key, card)
        except Refused as exc:
            raise InvalidRequest(str(exc), "new_card") from None
        lock_members(self.db, [ref.hash])  # a registration of it at a till waits, or comes first
        if Member.get_or_none(Member.card_hash == ref.hash) is not None \
                or CardState.get_or_none(CardState.card_hash == ref.hash) is not None:
            raise CardInUse(f"card ****{ref.last4 or '?'} already belongs to a member or was "
                            "retired", "new_card")
        return ref

    def _phone(self, phone: str, member: Member) -> dict[str, Any]:
        if not phone:
            return {"phone_hash": None, "phone_last4": ""}
        check_phone(phone)
        hashed = phone_hash(self.card_key, phone)
        other = Member.get_or_none(Member.phone_hash == hashed)
        if other is not None and other.id != member.id:
            raise InvalidRequest(f"phone ending {phone[-4:]} is registered to another member",
                                 "phone")
        return {"phone_hash": hashed, "phone_last4": phone[-4:]}

    @staticmethod
    def _state(card_hash: str) -> str:
        row = CardState.get_or_none(CardState.card_hash == card_hash)
        return row.state if row is not None else ACTIVE

    @staticmethod
    def _profile(member: Member) -> Profile:
        return Profile(member.name, member.birthday, member.phone_hash, member.phone_last4)

    def _set(self, op: _Op, card_hash: str, state: str, *, replaced_by: CardRef | None = None,
             profile: Profile | None = None, reason: str | None = None) -> None:
        """Card ``card_hash`` at version ``op.seq``, through the store code tills run too."""
        member = Member.get_or_none(Member.card_hash == card_hash)
        self.store.apply_card_update(card_update(
            op.seq, card_hash, state, op.reason if reason is None else reason,
            member.tier if member is not None else None, replaced_by=replaced_by,
            profile=profile), op.moment, op.actor)

    def _done(self, op: _Op, kind: str, member: Member, detail: dict[str, Any], *,
              state: str | None = None, profile: Profile | None = None) -> OpResult:
        """Record the operation and set the member's card to its version (publishing it)."""
        current = CardState.get_or_none(CardState.card_hash == member.card_hash)
        state, kept = state_kept(current, state)
        self._set(op, member.card_hash, state, profile=profile, reason=kept)
        MemberOp.create(**op_row(op.seq, kind, member.id, member.card_hash, op.actor,
                                 op.reason, detail, to_micros(op.moment.at)))
        member = Member.get_by_id(member.id)
        return OpResult(op.seq, kind, member.id, member.card_hash, member.card_last4, state,
                        member.balance, member.tier, detail)


def refuse_absent(ref: CardRef, state: CardState | None) -> NoReturn:
    """No member holds card ``ref`` (whose ``card_state`` row is ``state``): say why."""
    if state is not None and state.state == RETIRED:
        raise CardRetired(f"card ****{ref.last4 or '?'} is retired ({state.reason}); "
                          "operate on the member's current card", "card")
    raise UnknownMember(f"card ****{ref.last4 or '?'} belongs to no member", "card")


def refuse_retired(last4: str, state: str) -> None:
    """A member's card in ``state`` may take no operation when retired."""
    if state == RETIRED:
        raise CardRetired(f"card ****{last4} is retired; operate on the member's current card",
                          "card")


def state_kept(current: CardState | None, state: str | None = None) -> tuple[str, str | None]:
    """The state an operation leaves a card in (``state``, else the card's ``current`` one) and
    the reason it keeps (None: the operation's own): a frozen card keeps the freeze's reason
    through later operations (the till shows it)."""
    now = current.state if current is not None else ACTIVE
    state = state or now
    kept = None if state != now or state == ACTIVE else current.reason  # type: ignore[union-attr]
    return state, kept


def card_update(seq: int, card_hash: str, state: str, reason: str, tier: str | None, *,
                replaced_by: CardRef | None = None, profile: Profile | None = None) -> CardUpdate:
    """Card ``card_hash``'s state at operation ``seq`` (``tier``: its member's, None if none)."""
    return CardUpdate(
        card_hash=card_hash, version=seq, state=state, reason=reason,
        replaced_by=replaced_by.hash if replaced_by else None,
        replaced_by_last4=replaced_by.last4 if replaced_by else "",
        tier=tier if state != RETIRED else None, profile=profile)


def op_row(seq: int, kind: str, member: str, card_hash: str, actor: str, reason: str,
           detail: dict[str, Any], at_us: int) -> dict[str, Any]:
    """A ``member_op`` row."""
    return {"seq": seq, "kind": kind, "member": member, "card_hash": card_hash, "actor": actor,
            "reason": reason, "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True),
            "at_us": at_us}


def check_phone(phone: str) -> str:
    if not PHONE.fullmatch(phone or ""):
        raise InvalidRequest(f"phone {phone!r} is not 5 to 15 digits", "phone")
    return phone


def check_birthday(text: str, today: date) -> str:
    try:
        when = date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"birthday {text!r} is not a date (YYYY-MM-DD)", "birthday") \
            from None
    if not date(1900, 1, 1) <= when <= today:
        raise InvalidRequest(f"birthday {text} is not a past date", "birthday")
    return when.isoformat()



