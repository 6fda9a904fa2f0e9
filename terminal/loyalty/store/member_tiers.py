"""A member's tier: qualifying spend, the upgrade at once, the monthly review, and the tier HQ
reports as the floor of that review.
"""

from __future__ import annotations

import json
from datetime import datetime

from terminal.loyalty import tiers
from terminal.loyalty.calendar import add_months
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import DuplicateId
from terminal.loyalty.ids import new_id
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.accounts import Accounts, CardRef
from terminal.loyalty.store.models import Member
from terminal.loyalty.store.writer import Writer


class MemberTiers(Accounts):
    """Tier upgrades, reviews and HQ's tier."""

    def _window_start(self, end: datetime) -> datetime:
        """Where the qualifying window ending at ``end`` starts: ``tiers.window_months`` before,
        counted in the programme's zone (whatever zone ``end`` came in)."""
        return add_months(end.astimezone(self.rules.zone), -self.rules.tier_window_months)

    def _spend(self, member_id: str, start: datetime, end: datetime) -> int:
        """Qualifying spend at ``end``: paid by the member's sales in (start, end], less what
        was refunded of them by ``end``."""
        end_us = self._micros(end)
        window = (member_id, to_micros(start), end_us)
        row = self.sql.one(hotpath.SPEND, (*window, end_us, *window))
        return int(row[0]) if row else 0

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

    def _create_at_tier(self, w: Writer, ref: CardRef, tier: str, moment: Moment, *,
                        where: str, rule: str, **profile: object) -> Member:
        """A new member row for ``ref``'s card at ``tier`` (its next review due by the rules
        from now), or refused under ``rule`` if the card is a member already (``where``: as
        the message says it)."""
        if self.sql.member(ref.hash) is not None:
            raise DuplicateId(f"card ending {ref.last4 or '?'} is already a member{where}", rule,
                              why="card.member", last4=ref.last4 or "?")
        review = tiers.due_review(self.rules, None, moment.earn_time)
        return Member.create(id=new_id(), card_hash=ref.hash, card_last4=ref.last4,
                             registered_us=w.us, tier=tier,
                             tier_reviewed_us=to_micros(review) if review else None, **profile)

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

    def _record_hq_tier(self, w: Writer, member: Member, tier: str) -> None:
        # In ``meta`` rather than a member column: no schema change, and HQ's own ledger (whose
        # PostgreSQL schema is never migrated) reads the member table unchanged.
        self._set_meta(self._hq_tier_key(member), json.dumps(
            {"tier": tier, "at_us": to_micros(w.moment.earn_time)}, sort_keys=True))
        if tiers.rank(self.rules, tier) > tiers.rank(self.rules, member.tier):
            member.tier = tier
            Member.update(tier=tier).where(Member.id == member.id).execute()

    def _reviewed_tier(self, member: Member, moment: Moment) -> tuple[str, datetime | None]:
        """The tier every review due by the moment has decided, whether or not the member
        bought since (rules.toml [tiers]), and that review's instant if it is not yet recorded.

        A review is due once its instant is known to have passed: by the clock when trusted,
        else by the floor. It sets the tier from the spend as it stood at its own instant;
        this ledger sees only this till's spend, so for a member HQ has answered for, the tier
        HQ last reported is the floor (docs/sync.md). Sales recorded after the review's instant
        (on a clock not trusted to have passed it) upgraded the member at once: they still do.
        """
        as_of = moment.expiry_as_of
        if as_of is None:
            return member.tier, None
        reviewed = from_micros(member.tier_reviewed_us) if member.tier_reviewed_us else None
        boundary = tiers.due_review(self.rules, reviewed, as_of)
        if boundary is None:
            return member.tier, None
        level = tiers.qualifying_tier(
            self.rules, self._spend(member.id, self._window_start(boundary), boundary))
        reported = self._reported_tier(member)
        if reported is not None and \
                tiers.rank(self.rules, reported[0]) > tiers.rank(self.rules, level.name):
            level = self.rules.tier(reported[0])
        for wall_us, seq in self.sql.run(hotpath.SALES_AFTER,
                                         (member.id, to_micros(boundary))).fetchall():
            start = to_micros(self._window_start(from_micros(wall_us)))
            sales = (member.id, start, wall_us, seq)
            row = self.sql.one(hotpath.SPEND_AT_SALE, (*sales, wall_us, seq, *sales))
            level = tiers.upgraded(self.rules, level.name, int(row[0]) if row else 0) or level
        return level.name, boundary

    def _review_tier(self, member: Member, moment: Moment) -> None:
        """Record the review due by the moment (downgrades happen only here)."""
        tier, boundary = self._reviewed_tier(member, moment)
        if boundary is None:
            return
        member.tier = tier
        member.tier_reviewed_us = to_micros(boundary)
        Member.update(tier=member.tier, tier_reviewed_us=member.tier_reviewed_us).where(
            Member.id == member.id
        ).execute()

    def _upgrade_tier(self, member: Member, moment: Moment) -> int:
        """Upgrade at once if the spend now qualifies; returns that qualifying spend."""
        at = moment.earn_time
        spend = self._spend(member.id, self._window_start(at), at)
        level = tiers.upgraded(self.rules, member.tier, spend)
        if level is not None:
            member.tier = level.name
            Member.update(tier=level.name).where(Member.id == member.id).execute()
        return spend
