"""Member care for the console and ``posterm-hq campaign``: each call binds the models, runs in
one HQ write transaction and writes its row of the audit log (who, what; never an address)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from peewee import Database

from terminal.hq import rollup
from terminal.hq.care import campaigns, consent, segments
from terminal.hq.care.config import CareConfig
from terminal.hq.care.dispatch import ALL_MODELS
from terminal.hq.console import audit
from terminal.hq.console.models import CONSOLE_MODELS
from terminal.hq.console.roles import Principal
from terminal.hq.database import writing
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.binding import bound

MODELS = ALL_MODELS + CONSOLE_MODELS


def _now() -> datetime:
    return datetime.now(UTC)


class Care:
    """Campaigns and consent over one HQ database. ``card_key`` lets a campaign grant a bonus
    (HQ's member operations) and ties an SMS opt-in to the member's registered phone;
    ``config`` (the sender's ``--care-config``; None: the defaults) has the templates a
    preview fills."""

    def __init__(self, db: Database, rules: Rules, card_key: bytes | None = None,
                 clock: Callable[[], datetime] = _now, ops: MemberOps | None = None,
                 config: CareConfig | None = None) -> None:
        self.db, self.rules, self.card_key, self.clock = db, rules, card_key, clock
        self.config = config or CareConfig()
        self.ops = ops or (MemberOps(db, rules, card_key, clock) if card_key else None)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # The dormant and near-tier segments read the roll-ups.
        rollup.catch_up(self.db, self.rules.zone, self.rules.tier_window_months)
        with bound(self.db, MODELS), writing(self.db):
            yield

    def create(self, who: Principal, name: str, segment: str, days: int | None, channel: str,
               bonus: int = 0, store: str | None = None) -> int:
        with self._transaction():
            campaign = campaigns.create(name, segment, days, channel, bonus, actor=who.name,
                                        at=self.clock(), store=store)
            audit.record(who, "care.campaign.create", str(campaign), "",
                         f"{segment} days={days} {channel} bonus={bonus}"
                         + (f" store={store}" if store else ""))
            return campaign

    def preview(self, campaign: int, who: Principal | None = None) -> dict[str, Any]:
        """The segment's count, the reach, and a sample member's message; shown to ``who``,
        the sample member's view is in the audit log."""
        with self._transaction():
            found = campaigns.preview(self.rules, campaign, self.clock(), self.config)
            if who is not None and found["sample"] is not None:
                audit.record(who, "member.view", found["sample"]["member"],
                             detail=f"care campaign {campaign}: message preview")
            return found

    def stores(self) -> list[str]:
        """The stores a campaign may be kept to."""
        with self._transaction():
            return segments.stores()

    def queue(self, who: Principal, campaign: int) -> dict[str, int]:
        """Queue a draft campaign (its messages), then grant its bonus (:meth:`grant`)."""
        with self._transaction():
            counts = campaigns.queue(self.db, self.ops, self.rules, campaign, actor=who.name,
                                     at=self.clock())
            audit.record(who, "care.campaign.queue", str(campaign), "",
                         ", ".join(f"{key} {value}" for key, value in counts.items()))
        return {**counts, "bonus_ops": self.grant(who, campaign)}

    def grant(self, who: Principal, campaign: int) -> int:
        """Grant a queued campaign's bonus to every member still without it, a transaction of
        ``campaigns.GRANT_CHUNK`` members at a time; return how many were taken. Cut off (a
        crash, a stop), it is run again (``campaign send`` does) and goes on from there.

        Each chunk's transaction writes its own audit row (``care.campaign.bonus``: how many
        members got the bonus, how many were refused), so the audit log holds exactly the
        bonuses committed: a grant cut off leaves the rows of its chunks that committed, and
        its resumption adds the rest, never a summary of what did not happen. A campaign with
        no bonus, or one granted to the end, is found so by a read: no write transaction (on
        PostgreSQL the chain-wide lock) is taken."""
        with bound(self.db, MODELS):
            if not campaigns.bonus_waiting(campaign):
                return 0
        taken, last = 0, ""
        while True:
            with bound(self.db, MODELS), writing(self.db):
                chunk = campaigns.grant(self.db, self.ops, campaign, actor=who.name,
                                        limit=campaigns.GRANT_CHUNK, after=last)
                if chunk.taken:
                    audit.record(who, "care.campaign.bonus", str(campaign), "", chunk.detail())
            if not chunk.taken:
                break
            taken, last = taken + chunk.taken, chunk.last
        return taken

    def campaign(self, campaign: int) -> dict[str, Any]:
        """The campaign's own row (id, name, segment, channel, state, bonus): a read, with no
        write transaction, roll-up catch-up or message counts (``campaign send`` asks it on
        every run; :meth:`status` reads every message)."""
        with bound(self.db, MODELS):
            row = campaigns.get(campaign)
            return {"id": row.id, "name": row.name, "segment": row.segment,
                    "channel": row.channel, "state": row.state,
                    "bonus_points": row.bonus_points}

    def status(self, campaign: int) -> dict[str, Any]:
        with self._transaction():
            zone = self.rules.zone
            return {**campaigns.summary(campaigns.get(campaign), zone),
                    "message_list": campaigns.messages(campaign, zone)}

    def campaigns(self) -> list[dict[str, Any]]:
        with self._transaction():
            return campaigns.campaigns(self.rules.zone)

    def consent(self, who: Principal, member: str, channel: str, granted: bool,
                address: str | None = None, source: str = "console") -> None:
        """Record the member's yes or no; the audit row names the channel, not the address."""
        with self._transaction():
            consent.record(member, channel, granted, source=source, actor=who.name,
                           at=self.clock(), address=address, card_key=self.card_key)
            audit.record(who, "care.consent", member, "",
                         f"{channel} {'opt-in' if granted else 'opt-out'} ({source})")

    def consent_state(self, member: str) -> dict[str, dict[str, object]]:
        with self._transaction():
            return consent.state(member)

    def consent_history(self, member: str) -> list[dict[str, Any]]:
        with self._transaction():
            return consent.history(member, self.rules.zone)
