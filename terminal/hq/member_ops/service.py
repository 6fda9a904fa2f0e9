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
card's state and publishes it, retained, to every till; tills apply it through the same store
code (:meth:`LedgerStore.apply_card_update`), so no till disagrees with HQ.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from peewee import Database, fn

from terminal.hq.bundles import read_toml
from terminal.hq.chain_ledger import HQ_IDENTITY
from terminal.hq.database import open_hq_database, writing
from terminal.hq.member_ops.errors import (
    CardRetired,
    InvalidRequest,
    LedgerRefused,
    UnknownMember,
    WrongState,
)
from terminal.hq.models import HQ_MODELS, MemberOp
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
        member = Member.get_or_none(Member.card_hash == ref.hash)
        if member is None:
            row = CardState.get_or_none(CardState.card_hash == ref.hash)
            if row is not None and row.state == RETIRED:
                raise CardRetired(f"card ****{ref.last4 or '?'} is retired ({row.reason}); "
                                  "operate on the member's current card", "card")
            raise UnknownMember(f"card ****{ref.last4 or '?'} belongs to no member", "card")
        return member

    def _live_member(self, card: str | CardRef) -> Member:
        """The member on a card that is not retired."""
        member = self._member(card)
        if self._state(member.card_hash) == RETIRED:
            raise CardRetired(f"card ****{member.card_last4} is retired; operate on the "
                              "member's current card", "card")
        return member

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
        self.store.apply_card_update(CardUpdate(
            card_hash=card_hash, version=op.seq, state=state,
            reason=op.reason if reason is None else reason,
            replaced_by=replaced_by.hash if replaced_by else None,
            replaced_by_last4=replaced_by.last4 if replaced_by else "",
            tier=member.tier if member is not None and state != RETIRED else None,
            profile=profile), op.moment, op.actor)

    def _done(self, op: _Op, kind: str, member: Member, detail: dict[str, Any], *,
              state: str | None = None, profile: Profile | None = None) -> OpResult:
        """Record the operation and set the member's card to its version (publishing it)."""
        current = self._state(member.card_hash)
        state = state or current
        # A frozen card keeps the freeze's reason through later operations (the till shows it).
        kept = None if state != current or state == ACTIVE else \
            CardState.get_by_id(member.card_hash).reason
        self._set(op, member.card_hash, state, profile=profile, reason=kept)
        MemberOp.create(seq=op.seq, kind=kind, member=member.id, card_hash=member.card_hash,
                        actor=op.actor, reason=op.reason,
                        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True),
                        at_us=to_micros(op.moment.at))
        member = Member.get_by_id(member.id)
        return OpResult(op.seq, kind, member.id, member.card_hash, member.card_last4, state,
                        member.balance, member.tier, detail)


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



