"""The terminal's ledger on SQLite: every business operation in one IMMEDIATE transaction.

Each method checks its request with the pure engine (``terminal.loyalty``), raising a
:class:`~terminal.loyalty.errors.Refused` before anything is written, then writes the sale or
refund, its ledger entries and lot changes, the member's materialised balance, the day counters,
an audit row where a person's authority was used, and the outbox event for HQ, all in one
transaction (DESIGN promises 1 and 2).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from peewee import Database, SqliteDatabase, fn

from terminal.loyalty import ledger, redemption, refunds, tiers
from terminal.loyalty.calendar import add_months, local_day, lot_expiry
from terminal.loyalty.cards import card_hash, check_card, phone_hash
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.earning import compute_earning
from terminal.loyalty.errors import (
    AdjustRefused,
    DuplicateId,
    InvalidInput,
    RedeemRefused,
    UnknownCard,
    UnknownSale,
)
from terminal.loyalty.ids import new_id
from terminal.loyalty.operations import (
    TENDERS,
    Balance,
    ExchangeResult,
    Expiring,
    ExpiryResult,
    MemberView,
    Quote,
    RefundResult,
    Registration,
    SaleRequest,
    SaleResult,
)
from terminal.loyalty.pricing import check_lines, price
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import hotpath, reports
from terminal.loyalty.store.database import open_database, write_transaction
from terminal.loyalty.store.models import (
    Allocation,
    Audit,
    Exchange,
    LedgerEntry,
    Lot,
    Member,
    MemberDay,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
)

PHONE = re.compile(r"\+?[0-9]{5,15}")
ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")
MAX_ADJUST = 10_000_000
SWEEP_CHUNK = 10_000


@dataclass(frozen=True)
class Identity:
    store: str
    terminal: str


@dataclass(frozen=True)
class CardRef:
    """A member card known only by its keyed hash: how HQ names a member (terminals send card
    hashes, never card numbers). Accepted wherever a card number is."""

    hash: str
    last4: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.hash or ""):
            raise InvalidInput("a card hash is 64 lower-case hex digits", "card_hash")


def member_ref(key: bytes, card: str | CardRef) -> CardRef:
    """The card as its hash: a card number is checked (payment cards refused) and hashed."""
    if isinstance(card, CardRef):
        return card
    number = check_card(card)
    return CardRef(card_hash(key, number), number[-4:])


def _greatest(db: Database) -> Any:
    """The two-argument maximum: SQLite's scalar MAX, elsewhere (PostgreSQL at HQ) GREATEST."""
    return fn.MAX if isinstance(db, SqliteDatabase) else fn.GREATEST


# HQ posting a redemption a till already gave (``reconcile``): the till checked the balance,
# the day caps and the offline allowance; what the member no longer has becomes an overdraft.
_RECONCILING = redemption.RedeemContext(balance=2**62, redeemed_today=0,
                                        offline_redeemed_today=0, online=True)


@dataclass(frozen=True)
class HeldAtHq:
    """A redemption whose points HQ holds: HQ's balance for the member when the till asked,
    and the hold (``offline`` when HQ could not be asked and posts it on the sale's event)."""

    balance: int
    hold_id: str
    offline: bool = False

    @property
    def reason(self) -> str:
        how = "offline hold, HQ posts it" if self.offline else "held at HQ"
        return f"{how}: {self.hold_id}"


@dataclass
class _Writer:
    """The state of one write transaction: its moment and the sequence numbers it hands out."""

    moment: Moment
    seq: int
    epoch: int
    undated: bool = False  # a lot was written on an untrusted clock

    @property
    def us(self) -> int:
        return to_micros(self.moment.at)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class LedgerStore:
    """One terminal's ledger. Open with :meth:`open`; every write is one transaction."""

    def __init__(self, db: SqliteDatabase, rules: Rules, card_key: bytes, identity: Identity,
                 outbox: bool = True):
        """``outbox=False`` for a ledger that reports to no one (HQ's chain ledger): operations
        then write no outbox events, which nothing would ever drain."""
        if len(card_key) < 16:
            raise ValueError("the card key must be at least 16 bytes")
        self.db = db
        self.rules = rules
        self.card_key = card_key
        self.identity = identity
        self.outbox = outbox
        self._epoch = 0  # this session's epoch, read once at open
        self.sql = hotpath.Statements(db)

    @classmethod
    def open(
        cls,
        path: str | Path,
        rules: Rules,
        card_key: bytes,
        identity: Identity,
        new_session: bool = True,
    ) -> LedgerStore:
        store = cls(open_database(path), rules, card_key, identity)
        if new_session:
            with write_transaction(store.db):
                store._set_meta("epoch", str(store.epoch + 1))
        store._epoch = store.epoch
        return store

    def close(self) -> None:
        self.db.close()

    # -- meta: sequence, epoch, trusted-time floor ------------------------------------------

    def _meta(self, key: str, default: str = "") -> str:
        row = self.sql.one(hotpath.GET_META, (key,))
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        # An upsert rather than REPLACE, so HQ can keep the same ledger on PostgreSQL.
        self.sql.run(hotpath.SET_META, (key, value))

    @property
    def epoch(self) -> int:
        return int(self._meta("epoch", "0"))

    @property
    def floor(self) -> datetime | None:
        value = self._meta("trusted_floor_us")
        return from_micros(int(value)) if value else None

    def moment(self, at: datetime, trusted: bool = True) -> Moment:
        """A Moment for ``at`` with the floor this terminal has seen."""
        return Moment(at, trusted, self.floor)

    def observe_trusted_time(self, at: datetime) -> None:
        """Raise the floor to a trusted time from elsewhere (NTP, an HQ ack or bundle)."""
        with self._writing(Moment(at, True, self.floor)):
            pass

    @contextmanager
    def _writing(self, moment: Moment) -> Iterator[_Writer]:
        with write_transaction(self.db):
            # One read for the three counters every write transaction needs.
            meta = dict(self.sql.run(hotpath.META_COUNTERS).fetchall())
            writer = _Writer(moment, int(meta.get("seq", "0")), self._epoch)
            changed: dict[str, str] = {}
            if moment.trusted:
                us = to_micros(moment.at)
                if int(meta.get("trusted_floor_us") or 0) < us:
                    changed["trusted_floor_us"] = str(us)
                if meta.get("undated_lots") == "1":
                    self._date_lots(moment.at)
                    changed["undated_lots"] = "0"
            yield writer
            if writer.undated:
                changed["undated_lots"] = "1"
            changed["seq"] = str(writer.seq)
            for key, value in changed.items():
                self._set_meta(key, value)

    def _date_lots(self, at: datetime) -> None:
        """Lots earned on an untrusted clock were dated at the floor; their true earn time lies
        between the floor and now, so dating them now keeps them from expiring early."""
        expires = lot_expiry(at, self.rules.expiry, self.rules.zone)
        Lot.update(
            expires_us=_greatest(self.db)(Lot.expires_us, to_micros(expires)) if expires else None,
            dated_trusted=True,
        ).where(~Lot.dated_trusted).execute()

    # -- members -----------------------------------------------------------------------------

    def _member(self, card: str | CardRef) -> Member:
        ref = member_ref(self.card_key, card)
        member = self.sql.member(ref.hash)
        if member is None:
            shown = card if isinstance(card, str) else f"ending {ref.last4 or '?'}"
            raise UnknownCard(f"card {shown} belongs to no member", "card")
        return member

    def register(self, reg: Registration, moment: Moment) -> MemberView:
        """Register a member; ``reg.card`` may be a :class:`CardRef` (HQ registers by hash)."""
        ref = member_ref(self.card_key, reg.card)
        hashed = ref.hash
        number = reg.card if isinstance(reg.card, str) else f"ending {ref.last4 or '?'}"
        name = (reg.name or "").strip()
        if len(name) > 64:
            raise InvalidInput("a member name is at most 64 characters", "register.name")
        phone = reg.phone
        if phone is not None and not PHONE.fullmatch(phone):
            raise InvalidInput(f"phone {phone!r} is not 5 to 15 digits", "register.phone")
        today = local_day(moment.at, self.rules.zone)
        if reg.birthday is not None and not date(1900, 1, 1) <= reg.birthday <= today:
            raise InvalidInput(f"birthday {reg.birthday} is not a past date", "register.birthday")
        with self._writing(moment) as w:
            if Member.get_or_none(Member.card_hash == hashed):
                raise DuplicateId(f"card {number} is already registered", "register.card")
            phone_key = phone_hash(self.card_key, phone) if phone else None
            if phone_key and Member.get_or_none(Member.phone_hash == phone_key):
                raise DuplicateId(
                    f"phone ending {phone[-4:]} is already registered to another member",
                    "register.phone",
                )
            referrer = self._member(reg.referrer_card) if reg.referrer_card else None
            review = tiers.due_review(self.rules, None, moment.earn_time)
            member = Member.create(
                id=new_id(),
                card_hash=hashed,
                card_last4=ref.last4,
                name=name,
                phone_hash=phone_key,
                phone_last4=phone[-4:] if phone else "",
                birthday=reg.birthday.isoformat() if reg.birthday else None,
                referrer=referrer.id if referrer else None,
                registered_us=w.us,
                tier=self.rules.tiers[0].name,
                tier_reviewed_us=to_micros(review) if review else None,
            )
            bonus = self.rules.earn.bonus_registration
            if bonus:
                account = ledger.Account()
                self._credit(w, member, account, ledger.BONUS, bonus, reason="registration")
                self._save_account(member, account)
            self._event(w, "register", {
                "member": member.id,
                "card_hash": hashed,
                "name": name,
                "phone_hash": phone_key,
                "birthday": member.birthday,
                "referrer": referrer.id if referrer else None,
                "referrer_card_hash": referrer.card_hash if referrer else None,
                "bonus": bonus,
            })
            self._audit(w, reg.operator, "register", member.id, "")
        return self.member_view(member, moment)

    def import_member(self, card: str | CardRef, tier: str, moment: Moment,
                      operator: str = "") -> MemberView:
        """Record a member HQ already knows (registered at another store) so this till can
        serve them: HQ's tier, no registration bonus, a local balance of 0 (their points live
        at HQ), and an ``import`` event that HQ links to the member it holds instead of
        registering them again (DESIGN promise 4)."""
        ref = member_ref(self.card_key, card)
        if tier not in {level.name for level in self.rules.tiers}:
            raise InvalidInput(f"HQ's tier {tier!r} is not a tier of the rules in force",
                               "import.tier")
        review = tiers.due_review(self.rules, None, moment.earn_time)
        with self._writing(moment) as w:
            if self.sql.member(ref.hash) is not None:
                raise DuplicateId(f"card ending {ref.last4 or '?'} is already a member here",
                                  "import.card")
            member = Member.create(
                id=new_id(), card_hash=ref.hash, card_last4=ref.last4,
                registered_us=w.us, tier=tier,
                tier_reviewed_us=to_micros(review) if review else None,
            )
            self._record_hq_tier(w, member, tier)
            self._event(w, "import", {"member": member.id, "card_hash": ref.hash, "tier": tier})
            self._audit(w, operator, "import", member.id, f"known at HQ, tier {tier}")
        return self.member_view(member, moment)

    def note_hq_tier(self, card: str | CardRef, tier: str, moment: Moment) -> None:
        """Record the tier HQ answered for a member this ledger holds (see :meth:`_review_tier`):
        HQ's is the chain-wide tier, so a higher one applies here at once, and the monthly
        review never goes below the tier HQ last reported. Writes only when HQ's answer differs
        from the one recorded or raises the tier; a tier the rules in force lack is ignored."""
        if tier not in {level.name for level in self.rules.tiers}:
            return
        member = self._member(card)
        reported = self._reported_tier(member)
        if (reported is not None and reported[0] == tier
                and tiers.rank(self.rules, tier) <= tiers.rank(self.rules, member.tier)):
            return
        with self._writing(moment) as w:
            self._record_hq_tier(w, self._member(card), tier)

    @staticmethod
    def _hq_tier_key(member: Member) -> str:
        return f"hq_tier:{member.id}"

    def _reported_tier(self, member: Member) -> tuple[str, datetime] | None:
        """The tier HQ last reported for the member and when this till recorded it."""
        value = self._meta(self._hq_tier_key(member))
        if not value:
            return None
        found = json.loads(value)
        return found["tier"], from_micros(found["at_us"])

    def _record_hq_tier(self, w: _Writer, member: Member, tier: str) -> None:
        # In ``meta`` rather than a member column: no schema change, and HQ's own ledger (whose
        # PostgreSQL schema is never migrated) reads the member table unchanged.
        self._set_meta(self._hq_tier_key(member), json.dumps(
            {"tier": tier, "at_us": to_micros(w.moment.earn_time)}, sort_keys=True))
        if tiers.rank(self.rules, tier) > tiers.rank(self.rules, member.tier):
            member.tier = tier
            Member.update(tier=tier).where(Member.id == member.id).execute()

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
        if not PHONE.fullmatch(phone or ""):
            raise InvalidInput(f"phone {phone!r} is not 5 to 15 digits", "lookup.phone")
        member = Member.get_or_none(Member.phone_hash == phone_hash(self.card_key, phone))
        with self._writing(moment) as w:
            self._audit(w, actor, "lookup_phone", member.id if member else "", phone[-4:])
        if member is None:
            raise UnknownCard(f"no member has the phone ending {phone[-4:]}", "lookup.phone")
        return self.member_view(member, moment)

    def member_view(
        self, member: Member, moment: Moment, spend: int | None = None
    ) -> MemberView:
        rules = self.rules
        at = moment.earn_time
        if spend is None:
            spend = self._spend(member.id, add_months(at, -rules.tier_window_months), at)
        nxt = tiers.next_tier(rules, member.tier)
        horizon = at + timedelta(days=rules.expiry.remind_days)
        expiring = [
            Expiring(remaining, from_micros(expires_us).astimezone(rules.zone))
            for remaining, expires_us in self.sql.run(
                hotpath.EXPIRING, (member.id, to_micros(at), to_micros(horizon))
            ).fetchall()
        ]
        return MemberView(
            id=member.id,
            card_last4=member.card_last4,
            name=member.name,
            phone_last4=member.phone_last4,
            birthday=date.fromisoformat(member.birthday) if member.birthday else None,
            tier=member.tier,
            balance=member.balance,
            debt=member.debt,
            qualifying_spend_fen=spend,
            next_tier=nxt.name if nxt else None,
            spend_to_next_fen=max(0, nxt.qualify_spend_fen - spend) if nxt else None,
            expiring=expiring,
        )

    def _spend(self, member_id: str, start: datetime, end: datetime) -> int:
        """Qualifying spend: paid by the member's sales in (start, end], net of their refunds."""
        window = (member_id, to_micros(start), to_micros(end))
        row = self.sql.one(hotpath.SPEND, window + window)
        return int(row[0]) if row else 0

    def _review_tier(self, member: Member, moment: Moment) -> None:
        """Apply a monthly review that has passed since the last (downgrades happen only here).

        This ledger sees only this till's spend; for a member HQ has answered for, the tier HQ
        last reported is the floor: the review keeps the higher of the two (docs/sync.md)."""
        if not moment.trusted:
            return
        reviewed = from_micros(member.tier_reviewed_us) if member.tier_reviewed_us else None
        boundary = tiers.due_review(self.rules, reviewed, moment.at)
        if boundary is None:
            return
        window_start = add_months(boundary, -self.rules.tier_window_months)
        level = tiers.qualifying_tier(self.rules, self._spend(member.id, window_start, boundary))
        reported = self._reported_tier(member)
        if reported is not None and \
                tiers.rank(self.rules, reported[0]) > tiers.rank(self.rules, level.name):
            level = self.rules.tier(reported[0])
        member.tier = level.name
        member.tier_reviewed_us = to_micros(boundary)
        Member.update(tier=member.tier, tier_reviewed_us=member.tier_reviewed_us).where(
            Member.id == member.id
        ).execute()

    def _upgrade_tier(self, member: Member, moment: Moment) -> int:
        """Upgrade at once if the spend now qualifies; returns that qualifying spend."""
        at = moment.earn_time
        spend = self._spend(member.id, add_months(at, -self.rules.tier_window_months), at)
        level = tiers.upgraded(self.rules, member.tier, spend)
        if level is not None:
            member.tier = level.name
            Member.update(tier=level.name).where(Member.id == member.id).execute()
        return spend

    # -- accounts and entries --------------------------------------------------------------

    def _account(self, member: Member, also: list[str] | tuple[str, ...] = ()) -> ledger.Account:
        query = Lot.select().where(
            (Lot.member == member.id) & ((Lot.remaining != 0) | Lot.id.in_(list(also)))
        )
        return ledger.Account(
            (
                ledger.Lot(
                    lot.id,
                    from_micros(lot.earned_us),
                    from_micros(lot.expires_us) if lot.expires_us is not None else None,
                    lot.points,
                    lot.remaining,
                )
                for lot in query
            ),
            member.debt,
        )

    def _save_account(self, member: Member, account: ledger.Account) -> None:
        member.balance, member.debt = account.balance, account.debt
        self.sql.run(hotpath.SAVE_BALANCE, (account.balance, account.debt, member.id))

    def _write_entry(self, w: _Writer, member: Member, entry: ledger.Entry) -> None:
        self.sql.run(hotpath.INSERT_ENTRY, (
            entry.id, w.next_seq(), member.id, entry.kind, entry.points, entry.debt_delta,
            entry.sale_id, entry.reverses, entry.reason, entry.operator, w.us, w.moment.trusted,
        ))
        if entry.new_lot is not None:
            lot = entry.new_lot
            self.sql.run(hotpath.INSERT_LOT, (
                lot.id, member.id, to_micros(lot.earned_at),
                to_micros(lot.expires_at) if lot.expires_at else None, lot.points, lot.remaining,
                w.moment.trusted,
            ))
            w.undated = w.undated or not w.moment.trusted
        if entry.allocations:
            self.sql.many(hotpath.INSERT_ALLOCATION,
                          [(entry.id, lot_id, delta) for lot_id, delta in entry.allocations])
            self.sql.many(hotpath.MOVE_LOT,
                          [(delta, lot_id) for lot_id, delta in entry.allocations])

    def _credit_entry(
        self, account: ledger.Account, entry: ledger.Entry, moment: Moment
    ) -> ledger.Entry:
        """Apply a credit in memory; its lot expires by the rules from the moment's earn time."""
        earned = moment.earn_time
        expires = lot_expiry(earned, self.rules.expiry, self.rules.zone)
        return account.credit(entry, earned, expires)

    def _credit(
        self, w: _Writer, member: Member, account: ledger.Account, kind: str, points: int, **kw: Any
    ) -> ledger.Entry:
        entry = self._credit_entry(account, ledger.Entry(kind=kind, points=points, **kw), w.moment)
        self._write_entry(w, member, entry)
        return entry

    def _redeem(
        self, account: ledger.Account, points: int, sale_id: str, operator: str, reason: str,
        reconcile: str, held_at_hq: HeldAtHq | None = None,
    ) -> list[ledger.Entry]:
        """The redeem entry; when reconciling, what the lots cannot cover is a separate negative
        ``adjust`` entry whose reason names the overdraft (DESIGN promise 4). Held at HQ, the
        one redeem entry takes what the lots here hold and carries the rest as debt."""
        if held_at_hq is not None:
            return [account.debit(
                ledger.Entry(kind=ledger.REDEEM, points=-points, sale_id=sale_id,
                             reason=f"{reason}; {held_at_hq.reason}" if reason
                             else held_at_hq.reason, operator=operator),
                allow_debt=True,
            )]
        available = sum(lot.remaining for lot in account.open_lots())
        short = max(0, points - available) if reconcile else 0
        entries = []
        if points > short:
            entries.append(account.debit(
                ledger.Entry(kind=ledger.REDEEM, points=short - points, sale_id=sale_id,
                             reason=reason, operator=operator),
                allow_debt=False,
            ))
        if short:
            entries.append(account.debit(
                ledger.Entry(kind=ledger.ADJUST, points=-short, sale_id=sale_id,
                             reason=f"overdraft: {short} of {points} points redeemed at "
                                    f"{reconcile} beyond the chain balance",
                             operator=operator),
                allow_debt=True,
            ))
        return entries

    def _count_day(
        self, w: _Writer, member: Member, earned: int = 0, redeemed: int = 0,
        offline_redeemed: int = 0,
    ) -> None:
        day = local_day(w.moment.earn_time, self.rules.zone).isoformat()
        self.sql.run(hotpath.COUNT_DAY, (member.id, day, earned, redeemed, offline_redeemed))

    def _today(self, member: Member, moment: Moment) -> MemberDay:
        day = local_day(moment.earn_time, self.rules.zone).isoformat()
        row = self.sql.one(hotpath.DAY_COUNTS, (member.id, day)) or (0, 0, 0)
        return MemberDay(member=member.id, day=day, earned=row[0], redeemed=row[1],
                         offline_redeemed=row[2])

    def _redeem_context(
        self, member: Member, moment: Moment, online: bool, today: MemberDay | None = None,
        balance: int | None = None,
    ) -> Any:
        today = today or self._today(member, moment)
        return redemption.RedeemContext(
            balance=member.balance if balance is None else balance,
            redeemed_today=today.redeemed,
            offline_redeemed_today=today.offline_redeemed,
            online=online,
        )

    @staticmethod
    def _check_hold(held_at_hq: HeldAtHq | None, reconcile: str, field: str) -> None:
        if held_at_hq is not None and reconcile:
            raise InvalidInput("HQ posting a till's redemption does not redeem against itself",
                               field)

    def _checked_against(
        self, member: Member, moment: Moment, online: bool, reconcile: str,
        held_at_hq: HeldAtHq | None, today: MemberDay | None = None,
    ) -> Any:
        """What a redemption (a sale's or a goods exchange's) is checked against: nothing but
        the rules when HQ posts what a till gave (``reconcile``), HQ's balance when the points
        are held at HQ, else this ledger's balance; the day caps and the offline allowance
        apply to both of the last two."""
        if reconcile:
            return _RECONCILING
        return self._redeem_context(member, moment, online, today,
                                    balance=held_at_hq.balance if held_at_hq else None)

    def _event(self, w: _Writer, kind: str, body: dict[str, Any]) -> str:
        event_id = new_id()
        if not self.outbox:
            return event_id
        seq = w.next_seq()
        payload = {
            "id": event_id,
            "kind": kind,
            "store": self.identity.store,
            "terminal": self.identity.terminal,
            "seq": seq,
            "epoch": w.epoch,
            "wall_time": w.moment.at.isoformat(),
            "time_trusted": w.moment.trusted,
            "body": body,
        }
        self.sql.run(hotpath.INSERT_OUTBOX, (
            event_id, seq, w.epoch, kind,
            json.dumps(payload, ensure_ascii=False, sort_keys=True), w.us, w.moment.trusted,
        ))
        return event_id

    def _audit(self, w: _Writer, actor: str, action: str, subject: str, detail: str) -> None:
        Audit.insert(
            seq=w.next_seq(),
            wall_us=w.us,
            trusted=w.moment.trusted,
            actor=actor or "",
            action=action,
            subject=subject,
            detail=detail,
        ).execute()

    # -- sales ---------------------------------------------------------------------------------

    def _check_sale(self, req: SaleRequest) -> None:
        if not isinstance(req.id, str) or not ID.fullmatch(req.id):
            raise InvalidInput(f"sale id {req.id!r} is not 1-64 letters, digits or ._:-",
                               "sale.id")
        if req.tender not in TENDERS:
            raise InvalidInput(f"tender {req.tender!r} is not one of {', '.join(TENDERS)}",
                               "sale.tender")
        check_lines(req.lines)

    def quote(self, req: SaleRequest, moment: Moment, online: bool = True,
              hq_balance: int | None = None) -> Quote:
        """The subtotal view: discount, amount due, balance and the largest deduction allowed.
        ``hq_balance`` (HQ's answer to the till's lookup) stands for the local balance: HQ is
        authoritative for what a member may redeem (DESIGN promise 4)."""
        check_lines(req.lines)
        member = self._member(req.card) if req.card else None
        pct = self.rules.tier(member.tier).discount_percent if member else 0
        pricing = price(req.lines, pct, 0)
        if member is None:
            return Quote(pricing.list_fen, pricing.discount_fen, pricing.due_fen, 0, 0, 0)
        ctx = self._redeem_context(member, moment, online, balance=hq_balance)
        most = redemption.max_redeemable(self.rules, ctx, pricing.due_fen)
        return Quote(
            pricing.list_fen,
            pricing.discount_fen,
            pricing.due_fen,
            ctx.balance,
            most,
            redemption.deduction_fen(self.rules, most),
        )

    def sale(
        self, req: SaleRequest, moment: Moment, online: bool = True, reconcile: str = "",
        held_at_hq: HeldAtHq | None = None,
    ) -> SaleResult:
        """Record a sale. ``req.card`` may be a :class:`CardRef`. ``reconcile`` (HQ posting a
        till's sale) names where it happened: the redemption is taken as given and any part the
        member no longer has is recorded as an explicit negative ``adjust`` entry.
        ``held_at_hq`` (a till redeeming against HQ's balance) checks the redemption against
        HQ's balance; what this ledger's lots cannot cover is recorded as debt on the redeem
        entry, whose reason names the hold (see docs/sync.md)."""
        self._check_sale(req)
        self._check_hold(held_at_hq, reconcile, "sale.hold")
        rules = self.rules
        spend: int | None = None
        with self._writing(moment) as w:
            if self.sql.one(hotpath.SALE_EXISTS, (req.id,)):
                raise DuplicateId(f"sale {req.id} is already recorded", "sale.id")
            member = self._member(req.card) if req.card else None
            if member is None and req.redeem_points:
                raise RedeemRefused("an anonymous sale cannot redeem points", "sale.card")
            if member is not None:
                self._review_tier(member, moment)
            tier = rules.tier(member.tier) if member else rules.tiers[0]
            pct = tier.discount_percent if member else 0
            due = price(req.lines, pct, 0).due_fen
            fen = 0
            today = self._today(member, moment) if member is not None else None
            if member is not None:
                ctx = self._checked_against(member, moment, online, reconcile, held_at_hq, today)
                fen = redemption.check_deduction(rules, req.redeem_points, ctx, due)
            pricing = price(req.lines, pct, fen)
            earning = None
            if member is not None and today is not None:
                birthday = date.fromisoformat(member.birthday) if member.birthday else None
                earning = compute_earning(rules, pricing, tier, moment, birthday, today.earned)
            account = None
            if member is not None:
                # Only a redemption needs the lots; an earning sale credits on top of them.
                account = self._account(member) if req.redeem_points else ledger.Account(
                    debt=member.debt, unloaded=member.balance + member.debt)
            entries: list[ledger.Entry] = []
            if member is not None and account is not None and req.redeem_points:
                entries += self._redeem(account, req.redeem_points, req.id, req.operator, "",
                                        reconcile, held_at_hq)
            if account is not None and earning is not None and earning.points:
                entries.append(self._credit_entry(
                    account, ledger.Entry(kind=ledger.EARN, points=earning.points,
                                          sale_id=req.id), moment
                ))
            links = {e.kind: e.id for e in entries}
            seq = w.next_seq()
            earned = earning.points if earning else 0
            redeemed = req.redeem_points if member else 0
            detail = {
                "why": earning.why if earning else [],
                "promotion": earning.promotion if earning else None,
                "birthday": earning.birthday if earning else False,
            }
            self.sql.run(hotpath.INSERT_SALE, (
                req.id, seq, member.id if member else None, w.us, moment.trusted, req.tender,
                pricing.list_fen, pricing.discount_fen, pricing.deduction_fen, pricing.paid_fen,
                earned, redeemed, links.get(ledger.EARN), links.get(ledger.REDEEM),
                tier.name if member else "", req.operator,
                json.dumps(detail, ensure_ascii=False),
            ))
            self.sql.many(hotpath.INSERT_SALE_LINE, [
                (req.id, number, p.line.sku, p.line.name, p.line.category, p.line.qty,
                 p.line.price_fen, p.line.list_fen, p.paid_fen)
                for number, p in enumerate(pricing.lines, 1)
            ])
            if member is not None and account is not None:
                for entry in entries:
                    self._write_entry(w, member, entry)
                self._count_day(
                    w, member,
                    earned=earned,
                    redeemed=redeemed,
                    offline_redeemed=0 if online else redeemed,
                )
                self._save_account(member, account)
                self._pay_referral(w, member)
                spend = self._upgrade_tier(member, moment)
            self._event(w, "sale", {
                "sale": req.id,
                "member": member.id if member else None,
                "card_hash": member.card_hash if member else None,
                "tender": req.tender,
                "redeem_points": redeemed,
                "online": online,
                "lines": [
                    {"sku": p.line.sku, "name": p.line.name, "category": p.line.category,
                     "qty": p.line.qty, "price_fen": p.line.price_fen, "paid_fen": p.paid_fen}
                    for p in pricing.lines
                ],
                "list_fen": pricing.list_fen,
                "discount_fen": pricing.discount_fen,
                "deduction_fen": pricing.deduction_fen,
                "paid_fen": pricing.paid_fen,
                "points_earned": earned,
                "operator": req.operator,
            })
        return SaleResult(
            id=req.id,
            seq=seq,
            list_fen=pricing.list_fen,
            discount_fen=pricing.discount_fen,
            deduction_fen=pricing.deduction_fen,
            paid_fen=pricing.paid_fen,
            points_earned=earned,
            points_redeemed=redeemed,
            why="; ".join(earning.why) if earning else "anonymous sale: no points",
            promotion=earning.promotion if earning else None,
            birthday=earning.birthday if earning else False,
            line_paid_fen=[p.paid_fen for p in pricing.lines],
            member=self.member_view(member, moment, spend) if member else None,
        )

    def _pay_referral(self, w: _Writer, member: Member) -> None:
        """The referrer's bonus, credited once, when the referred member first buys."""
        bonus = self.rules.earn.bonus_referral
        if not member.referrer_id or member.referral_paid or not bonus:
            return
        referrer = Member.get_by_id(member.referrer_id)
        account = self._account(referrer)
        self._credit(w, referrer, account, ledger.BONUS, bonus, reason=f"referral:{member.id}")
        self._save_account(referrer, account)
        member.referral_paid = True
        Member.update(referral_paid=True).where(Member.id == member.id).execute()

    # -- refunds and voids ---------------------------------------------------------------------

    def refund(
        self,
        sale_id: str,
        lines: list[tuple[str, object]] | None,
        moment: Moment,
        operator: str = "",
        refund_id: str | None = None,
        kind: str = "refund",
    ) -> RefundResult:
        """Refund units of a recorded sale (all that is left when ``lines`` is None).

        A ``refund_id`` already recorded makes this a no-op that answers what was recorded.
        ``kind="void"`` cancels what is left of the sale, by the same formulas.
        """
        if refund_id is not None and not ID.fullmatch(refund_id):
            raise InvalidInput(f"refund id {refund_id!r} is not 1-64 letters, digits or ._:-",
                               "refund.id")
        if kind not in ("refund", "void"):
            raise InvalidInput(f"unknown refund kind {kind!r}", "refund.kind")
        # A repeated refund id answers what was recorded and writes nothing at all.
        done = Refund.get_or_none(Refund.id == refund_id) if refund_id is not None else None
        if done is not None:
            return self._refund_result(done, moment, repeated=True)
        with self._writing(moment) as w:
            if refund_id is not None and Refund.get_or_none(Refund.id == refund_id):
                raise DuplicateId(f"refund {refund_id} was recorded meanwhile", "refund.id")
            sale = Sale.get_or_none(Sale.id == sale_id)
            if sale is None:
                raise UnknownSale(f"sale {sale_id} is not recorded on this terminal", "refund.sale")
            before = list(sale.refunds)
            given = {
                row.line_no: (row.qty, row.fen)
                for row in RefundLine.select(
                    RefundLine.line_no,
                    fn.SUM(RefundLine.qty).alias("qty"),
                    fn.SUM(RefundLine.fen).alias("fen"),
                )
                .join(Refund)
                .where(Refund.sale == sale.id)
                .group_by(RefundLine.line_no)
            }
            sold = [
                refunds.SoldLine(
                    line.line_no, line.sku, line.qty, line.paid_fen,
                    *given.get(line.line_no, (0, 0)),
                )
                for line in sale.lines.order_by(SaleLine.line_no)
            ]
            plan = refunds.plan_refund_lines(sale.id, sold, lines)
            refunded_before = sum(r.refunded_fen for r in before)
            refunded_after = refunded_before + sum(line.fen for line in plan)
            planned = {line.line_no: line.qty for line in plan}
            all_units = all(s.left == planned.get(s.line_no, 0) for s in sold)
            reverse = restore = 0
            if self.rules.refund.reverse_earned:
                reverse = refunds.proportional_so_far(
                    sale.points_earned, sale.paid_fen, refunded_after, all_units
                ) - sum(r.points_reversed for r in before)
            if self.rules.refund.restore_redeemed:
                restore = refunds.proportional_so_far(
                    sale.points_redeemed, sale.paid_fen, refunded_after, all_units
                ) - sum(r.points_restored for r in before)
            refund_row_id = refund_id or new_id()
            row = Refund.create(
                id=refund_row_id,
                seq=w.next_seq(),
                sale=sale.id,
                kind=kind,
                wall_us=w.us,
                trusted=moment.trusted,
                refunded_fen=refunded_after - refunded_before,
                points_reversed=reverse,
                points_restored=restore,
                operator=operator,
            )
            RefundLine.insert_many(
                [{"refund": refund_row_id, "line_no": p.line_no, "qty": p.qty, "fen": p.fen}
                 for p in plan]
            ).execute()
            member = Member.get_by_id(sale.member_id) if sale.member_id else None
            if member is not None and (reverse or restore):
                self._move_refund_points(w, member, sale, reverse, restore, operator)
            self._event(w, kind, {
                "refund": refund_row_id,
                "sale": sale.id,
                "member": member.id if member else None,
                "card_hash": member.card_hash if member else None,
                "lines": [{"line_no": p.line_no, "sku": p.sku, "qty": p.qty, "fen": p.fen}
                          for p in plan],
                "refunded_fen": row.refunded_fen,
                "points_reversed": reverse,
                "points_restored": restore,
                "operator": operator,
            })
            self._audit(w, operator, kind, sale.id, f"{refund_row_id} {row.refunded_fen} fen")
        return self._refund_result(row, moment)

    def _move_refund_points(
        self, w: _Writer, member: Member, sale: Sale, reverse: int, restore: int, operator: str
    ) -> None:
        taken: dict[str, int] = defaultdict(int)
        if restore:
            # What this sale's redemption took from each lot, less what refunds gave back.
            for alloc in Allocation.select().join(LedgerEntry).where(
                (LedgerEntry.sale_id == sale.id)
                & (LedgerEntry.kind.in_([ledger.REDEEM, ledger.RESTORE]))
            ):
                taken[alloc.lot_id] -= alloc.points
        account = self._account(member, also=[*taken, sale.earn_entry or ""])
        if reverse:
            entry = account.debit(
                ledger.Entry(kind=ledger.REVERSE, points=-reverse, sale_id=sale.id,
                             reverses=sale.earn_entry, operator=operator),
                allow_debt=True,
                first_from=sale.earn_entry,
            )
            self._write_entry(w, member, entry)
        if restore:
            entry = account.restore(
                ledger.Entry(kind=ledger.RESTORE, points=restore, sale_id=sale.id,
                             reverses=sale.redeem_entry, operator=operator),
                [(lot_id, room) for lot_id, room in taken.items() if room > 0],
            )
            self._write_entry(w, member, entry)
        self._save_account(member, account)

    def _refund_result(self, row: Refund, moment: Moment, repeated: bool = False) -> RefundResult:
        sale = row.sale
        skus = {line.line_no: line.sku for line in sale.lines}
        member = Member.get_by_id(sale.member_id) if sale.member_id else None
        return RefundResult(
            id=row.id,
            sale=sale.id,
            kind=row.kind,
            refunded_fen=row.refunded_fen,
            points_reversed=row.points_reversed,
            points_restored=row.points_restored,
            lines=[(skus[line.line_no], line.qty, line.fen)
                   for line in row.lines.order_by(RefundLine.line_no)],
            member=self.member_view(member, moment) if member else None,
            repeated=repeated,
        )

    # -- goods exchange and adjustments --------------------------------------------------------

    def exchange(
        self, card: str | CardRef, sku: str, qty: object, moment: Moment, online: bool = True,
        operator: str = "", reconcile: str = "", held_at_hq: HeldAtHq | None = None,
        exchange_id: str | None = None,
    ) -> ExchangeResult:
        """Exchange goods for points. ``reconcile`` and ``held_at_hq`` work as for
        :meth:`sale`'s redemption: held at HQ, the exchange is checked against HQ's balance and
        what this ledger's lots cannot cover is debt on the redeem entry, whose reason names the
        hold. ``exchange_id`` is given when the exchange must be named before it is recorded
        (the till's hold at HQ is named by it; HQ files a till's exchange under a chain-wide
        id); a repeated one is refused."""
        self._check_hold(held_at_hq, reconcile, "exchange.hold")
        if exchange_id is not None and not ID.fullmatch(exchange_id):
            raise InvalidInput(f"exchange id {exchange_id!r} is not 1-64 letters, digits or "
                               "._:-", "exchange.id")
        with self._writing(moment) as w:
            if exchange_id is not None and Exchange.get_or_none(Exchange.id == exchange_id):
                raise DuplicateId(f"exchange {exchange_id} is already recorded", "exchange.id")
            member = self._member(card)
            before = (
                Exchange.select(fn.COALESCE(fn.SUM(Exchange.qty), 0))
                .where((Exchange.member == member.id) & (Exchange.sku == sku))
                .scalar()
            )
            ctx = self._checked_against(member, moment, online, reconcile, held_at_hq)
            goods, points = redemption.check_exchange(self.rules, sku, qty, ctx, int(before))
            exchange_id = exchange_id or new_id()
            account = self._account(member)
            taken = self._redeem(account, points, exchange_id, operator,
                                 f"exchange {goods.sku} x{qty}", reconcile, held_at_hq)
            Exchange.create(
                id=exchange_id, seq=w.next_seq(), member=member.id, sku=goods.sku, qty=qty,
                points=points, wall_us=w.us, trusted=moment.trusted, operator=operator,
            )
            for entry in taken:
                self._write_entry(w, member, entry)
            self._count_day(w, member, redeemed=points,
                            offline_redeemed=0 if online else points)
            self._save_account(member, account)
            self._event(w, "exchange", {
                "exchange": exchange_id, "member": member.id, "card_hash": member.card_hash,
                "sku": goods.sku, "qty": qty,
                "points": points, "online": online, "operator": operator,
            })
        return ExchangeResult(exchange_id, goods.sku, goods.name, int(qty),  # type: ignore[call-overload]
                              points, self.member_view(member, moment))

    def adjust(
        self, card: str | CardRef, points: object, reason: str, operator: str, moment: Moment,
        reconcile: str = "",
    ) -> MemberView:
        """A manual adjustment with its reason and operator; it may not overdraw the member,
        except when HQ posts (``reconcile``) one a till already made: then the part beyond the
        chain balance becomes debt and the reason says so."""
        if isinstance(points, bool) or not isinstance(points, int) or points == 0:
            raise InvalidInput(f"an adjustment is a non-zero whole number of points, not "
                               f"{points!r}", "adjust.points")
        if abs(points) > MAX_ADJUST:
            raise InvalidInput(f"an adjustment of {points} is over the limit of {MAX_ADJUST}",
                               "adjust.points")
        if not (reason or "").strip():
            raise InvalidInput("an adjustment needs a reason", "adjust.reason")
        if not (operator or "").strip():
            raise InvalidInput("an adjustment needs the operator's name", "adjust.operator")
        with self._writing(moment) as w:
            member = self._member(card)
            account = self._account(member)
            if points > 0:
                entry = self._credit(w, member, account, ledger.ADJUST, points,
                                     reason=reason, operator=operator)
            else:
                if reconcile and -points > account.balance:
                    reason = f"{reason} (overdraft: {reconcile})"
                elif -points > account.balance:
                    raise AdjustRefused(
                        f"an adjustment of {points} would overdraw the balance "
                        f"({account.balance})", "adjust.points",
                    )
                entry = account.debit(
                    ledger.Entry(kind=ledger.ADJUST, points=points, reason=reason,
                                 operator=operator),
                    allow_debt=bool(reconcile),
                )
                self._write_entry(w, member, entry)
            self._save_account(member, account)
            self._event(w, "adjust", {"entry": entry.id, "member": member.id,
                                      "card_hash": member.card_hash, "points": points,
                                      "reason": reason, "operator": operator})
            self._audit(w, operator, "adjust", member.id, f"{points} {reason}")
        return self.member_view(member, moment)

    # -- expiry ----------------------------------------------------------------------------------

    def expire(self, moment: Moment) -> ExpiryResult:
        """Expire every lot due at the moment's expiry time, in transactions of SWEEP_CHUNK lots.

        This is the one bulk path: it writes through the cursor with executemany because at a
        million lots the ORM's per-row cost dominates (see bench/bench_ledger.py), visits each
        chunk's members in key order, and lends SQLite a larger page cache while it runs.
        """
        as_of = moment.expiry_as_of
        if as_of is None:
            return ExpiryResult(0, 0, 0, None, "the clock is not trusted and no trusted time "
                                               "has been seen: nothing expires")
        as_of_us = to_micros(as_of)
        lots = points = 0
        members: set[str] = set()
        with self._sweep_cache():
            while True:
                with self._writing(moment) as w:
                    due = self.sql.run(hotpath.DUE_LOTS, (as_of_us, SWEEP_CHUNK)).fetchall()
                    if not due:
                        break
                    by_member: dict[str, list[tuple[str, int]]] = defaultdict(list)
                    for lot_id, member_id, remaining in due:
                        by_member[member_id].append((lot_id, remaining))
                    entry_rows, alloc_rows, member_rows = [], [], []
                    for member_id in sorted(by_member):
                        member_lots = by_member[member_id]
                        entry_id = new_id()
                        total = sum(r for _, r in member_lots)
                        entry_rows.append((entry_id, w.next_seq(), member_id, ledger.EXPIRE,
                                           -total, 0, None, None, "", "", w.us, moment.trusted))
                        alloc_rows.extend((entry_id, lot_id, -r) for lot_id, r in member_lots)
                        member_rows.append((total, member_id))
                    self.sql.many(hotpath.INSERT_ENTRY, entry_rows)
                    self.sql.many(hotpath.INSERT_ALLOCATION, alloc_rows)
                    self.sql.many(hotpath.EMPTY_LOT, sorted((lot_id,) for lot_id, *_ in due))
                    self.sql.many(hotpath.TAKE_FROM_BALANCE, member_rows)
                    lots += len(due)
                    points += sum(r for *_, r in due)
                    members.update(by_member)
        return ExpiryResult(lots, points, len(members), as_of)

    @contextmanager
    def _sweep_cache(self) -> Iterator[None]:
        """64 MiB of page cache for the sweep only; the till's own footprint stays small."""
        if not isinstance(self.db, SqliteDatabase):
            yield
            return
        before = self.db.execute_sql("PRAGMA cache_size").fetchone()[0]
        self.db.execute_sql("PRAGMA cache_size = -65536")
        try:
            yield
        finally:
            self.db.execute_sql(f"PRAGMA cache_size = {int(before)}")

    # -- reading ---------------------------------------------------------------------------------

    def statement(self, card: str | CardRef, moment: Moment) -> dict[str, Any]:
        """Every entry with its allocations, and every lot with what is left and its expiry."""
        member = self._member(card)
        return reports.statement(member, self.rules, self.member_view(member, moment))

    def daily_report(self, day: date) -> dict[str, Any]:
        """Sales, points issued, redeemed, expired, reversed, and the outstanding liability."""
        return reports.daily(self.rules, self.identity.store, self.identity.terminal, day)

    def check_invariants(self) -> list[str]:
        """Every way the ledger could disagree with itself; empty when it is sound."""
        return reports.invariant_problems(self.db)
