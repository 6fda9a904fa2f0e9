"""The sender: delivers the outbox's due messages, each once.

For each due message (pending, or ``sending`` left by a sender that died mid-message), by due
time then campaign:

1. decide, in one transaction: outside quiet hours (the chain's zone) or stop; the member not
   erased, still agreeing to the channel with an address (an opt-out stops a queued message),
   under the frequency cap (messages sent or being sent to the member in the last ``cap_days``),
   else the message is skipped with why; otherwise it becomes ``sending``, its attempt counted;
2. send through the channel, with the message's id, outside any transaction;
3. record ``sent``; or, refused for now, ``pending`` again after ``retry_seconds`` (``failed``
   after ``max_attempts``); refused for good, ``failed``: in the transaction of the next
   message's step 1 (one commit per message, each an fsync on SQLite).

A sender killed between 1 and 3 leaves the message ``sending``: the next run sends it again,
with the same id. So the gateway and the mail server see one id per message, possibly twice
(the gateway's ``Idempotency-Key`` and the email's ``Message-ID`` make that one message); never
two ids for one message. One sender runs at a time (:func:`one_sender`: a second one is refused,
not left to send the first one's message again). Logs name message ids and outcomes only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from peewee import Database, PostgresqlDatabase, fn

from terminal.hq.care import consent
from terminal.hq.care.channels import Channel, ChannelError, SmsGateway
from terminal.hq.care.config import CareConfig
from terminal.hq.care.models import CARE_MODELS, CareCampaign, CareMessage, CareState
from terminal.hq.care.segments import is_excluded
from terminal.hq.database import writing
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import MODELS

log = logging.getLogger(__name__)
ALL_MODELS = MODELS + HQ_MODELS + CARE_MODELS
_PG_SENDER_LOCK = 0x63617265  # "care": one sender per database (database.py has the others)
REPLIES_AFTER = "sms_replies_after"  # care_state's key of the SMS replies' cursor, + the URL


def _replies_key(gateway: SmsGateway) -> str:
    return f"{REPLIES_AFTER} {gateway.section.replies_url}"


class SenderBusy(RuntimeError):
    """Another sender is running on this database."""


@contextmanager
def one_sender(db: Database) -> Iterator[None]:
    """Hold the database's sender lock for the block, or raise :class:`SenderBusy`. A session
    advisory lock on PostgreSQL, an exclusive ``flock`` on ``<file>.care-sender.lock`` beside a
    SQLite file: either goes with the process, so a sender killed leaves no lock behind."""
    busy = SenderBusy("another posterm-hq campaign send is running on this database")
    if isinstance(db, PostgresqlDatabase):
        if not db.execute_sql("SELECT pg_try_advisory_lock(%s)", (_PG_SENDER_LOCK,)).fetchone()[0]:
            raise busy
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_SENDER_LOCK,))
        return
    fd = os.open(f"{db.database}.care-sender.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield
    finally:
        os.close(fd)


@dataclass
class Run:
    """What one run did."""

    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    retrying: int = 0  # refused for now, due again later
    quiet_until: datetime | None = None  # stopped by quiet hours

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "skipped": self.skipped, "failed": self.failed,
                "retrying": self.retrying,
                "quiet_until": self.quiet_until.isoformat() if self.quiet_until else None}


@dataclass(frozen=True)
class Job:
    id: str
    channel: str
    address: str
    subject: str
    text: str


def quiet_until(at: datetime, start: time, end: time, zone: Any) -> datetime | None:
    """The end of the quiet hours ``at`` falls in (start inclusive, end exclusive, in ``zone``);
    None outside them. Equal start and end: no quiet hours."""
    local = at.astimezone(zone)
    now = local.time()
    if start == end:
        return None
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, zone)


class Dispatcher:
    """Sends due messages over ``channels`` (by name: ``sms``, ``email``)."""

    def __init__(self, db: Database, rules: Rules, config: CareConfig,
                 channels: Mapping[str, Channel], clock: Callable[[], datetime]) -> None:
        self.db, self.rules, self.config = db, rules, config
        self.channels, self.clock = channels, clock

    def run(self, campaign: int | None = None) -> Run:
        """Send every message due now (of ``campaign``, or of all), until none is. What a send
        came to is recorded in the transaction that claims the next message (one commit per
        message); a sender stopped in between leaves that message ``sending``, sent again with
        its id by the next run."""
        outcome = Run()
        self.read_replies()
        done: tuple[Job, ChannelError | None] | None = None
        while True:
            now = self.clock()
            start, end = self.config.quiet
            outcome.quiet_until = quiet_until(now, start, end, self.rules.zone)
            with bound(self.db, ALL_MODELS), writing(self.db):
                if done is not None:
                    self._record(*done, outcome)
                    done = None
                if outcome.quiet_until is not None:
                    return outcome
                job = self._claim(now, campaign)
            if job is None:
                return outcome
            if isinstance(job, str):
                outcome.skipped[job] = outcome.skipped.get(job, 0) + 1
                continue
            done = (job, self._send(job))

    def replies_after(self) -> str:
        """The SMS gateway's cursor of the replies applied so far ("" before the first, or with
        no gateway): kept in ``care_state`` (HQ migration 24) per replies URL, so a sender
        started again reads on from it, and another gateway's replies are read from their
        first."""
        gateway = self.channels.get("sms")
        if not isinstance(gateway, SmsGateway):
            return ""
        with bound(self.db, ALL_MODELS):
            row = CareState.get_or_none(CareState.key == _replies_key(gateway))
        return row.value if row is not None else ""

    def read_replies(self) -> int:
        """Record the opt-outs members texted back to the SMS gateway (回复TD退订) before
        anything is sent; how many members opted out. Each page's opt-outs and the cursor after
        it commit together, so a sender killed mid-way reads that page again and one started
        again reads on from the saved cursor: every reply is applied once. A gateway that does
        not answer leaves them for the next run."""
        gateway = self.channels.get("sms")
        stopped = 0
        while isinstance(gateway, SmsGateway):
            before = self.replies_after()
            try:
                replies, after = gateway.replies(before)
            except ChannelError as exc:
                log.warning("SMS replies not read: %s", exc.code)
                break
            with bound(self.db, ALL_MODELS), writing(self.db):
                for reply in replies:
                    stopped += len(consent.stop_by_reply(reply.phone, reply.text,
                                                         from_micros(reply.at_us)))
                if after != before:
                    (CareState.insert(key=_replies_key(gateway), value=after)
                     .on_conflict(conflict_target=[CareState.key],
                                  update={CareState.value: after}).execute())
            if not replies or after == before:
                break
        if stopped:
            log.info("%d member(s) opted out of SMS by replying", stopped)
        return stopped

    def _due(self, now_us: int, campaign: int | None) -> CareMessage | None:
        # A bonus campaign's message waits for its member's bonus (campaigns.grant): the text
        # may name it.
        granting = CareCampaign.select(CareCampaign.id).where(CareCampaign.bonus_points > 0)
        query = CareMessage.select().where(
            CareMessage.state.in_(consent.OPEN) & (CareMessage.due_us <= now_us)
            & (CareMessage.bonus_op.is_null(False) | CareMessage.campaign.not_in(granting)))
        if campaign is not None:
            query = query.where(CareMessage.campaign == campaign)
        else:
            query = query.where(CareMessage.channel.in_(list(self.channels)))
        return query.order_by(CareMessage.due_us, CareMessage.campaign, CareMessage.id).first()

    def _claim(self, now: datetime, campaign: int | None) -> Job | str | None:
        """The next message to send now (marked sending), the reason it was skipped, or None
        (in the caller's transaction)."""
        now_us = to_micros(now)
        message = self._due(now_us, campaign)
        if message is None:
            return None
        if message.channel not in self.channels:
            raise ValueError(f"campaign {message.campaign}: no {message.channel} channel "
                             "configured (--care-config)")
        why = self._refusal(message, now)
        address = consent.address(message.member, message.channel)
        if why is None and address is None:
            why = "opted_out"
        if why is not None:
            message.state, message.why, message.fields = "skipped", why, "{}"
            message.save()
            log.info("care message %s skipped: %s", message.id, why)
            return why
        message.state, message.attempts = "sending", message.attempts + 1
        message.save()
        campaign_row = CareCampaign.get_by_id(message.campaign)
        subject, text = self.config.render(campaign_row.segment, json.loads(message.fields))
        assert address is not None
        return Job(message.id, message.channel, address, subject, text)

    def _refusal(self, message: CareMessage, now: datetime) -> str | None:
        if is_excluded(message.member):
            return "erased"
        since = to_micros(now - timedelta(days=self.config.policy.cap_days))
        recent = (CareMessage.select(fn.COUNT(CareMessage.id))
                  .where((CareMessage.member == message.member)
                         & (CareMessage.id != message.id)
                         & (((CareMessage.state == "sent") & (CareMessage.sent_us >= since))
                            | (CareMessage.state == "sending"))).scalar())
        return "cap" if recent >= self.config.policy.cap_messages else None

    def _send(self, job: Job) -> ChannelError | None:
        try:
            self.channels[job.channel].send(job.id, job.address, job.subject, job.text)
        except ChannelError as exc:
            return exc
        return None

    def _record(self, job: Job, error: ChannelError | None, outcome: Run) -> None:
        """What sending ``job`` came to (in the caller's transaction)."""
        if error is None:
            CareMessage.update(state="sent", why="", fields="{}",
                               sent_us=to_micros(self.clock())).where(
                CareMessage.id == job.id).execute()
            outcome.sent += 1
            log.info("care message %s sent (%s)", job.id, job.channel)
            return
        policy = self.config.policy
        message = CareMessage.get_by_id(job.id)
        if error.transient and message.attempts < policy.max_attempts:
            message.state, message.why = "pending", error.code
            message.due_us = to_micros(self.clock() + timedelta(seconds=policy.retry_seconds))
            outcome.retrying += 1
        else:
            message.state, message.why, message.fields = "failed", error.code, "{}"
            outcome.failed += 1
        message.save()
        log.warning("care message %s not sent (%s, attempt %d): %s", job.id, job.channel,
                    message.attempts, error.code)
