"""The chain's authoritative ledger: terminals' events applied at most once, holds, lookups.

Every event is replayed through the terminal's own engine and store (:class:`LedgerStore`, with
members named by card hash) into HQ's database, in the same transaction as its ``applied_event``
row, so a re-delivered id is a no-op (DESIGN promise 3). Redemptions are posted as the till gave
them (``reconcile``): a part the member no longer had chain-wide, because two stores redeemed
while cut off, becomes an explicit negative ``adjust`` entry naming the overdraft (promise 4).

An event that depends on one not yet here (a sale by a member whose registration is still in
another till's backlog, a refund before its sale) is left unacked; the till publishes it again.
An event the rules refuse for good is recorded as refused, with the reason, and acked. So is one
that fails :mod:`terminal.hq.validation` (checked before it touches the ledger), or fails while it
is applied (:mod:`terminal.hq.refusals`): alone, while the rest of its batch commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from peewee import Case, Database, PeeweeException, PostgresqlDatabase, __exception_wrapper__, fn

from terminal.hq import adjustments, day_reports, holds, lookups, parallel_sweep
from terminal.hq.arrays import array
from terminal.hq.batch import BatchStatements
from terminal.hq.care.till import record_from_till
from terminal.hq.database import (
    HqPostgresDatabase,
    lock_free_members_later,
    member_key,
    member_writing,
    pipelined_writing,
    retryable,
    snapshot,
    unit,
)
from terminal.hq.member_ops import publish
from terminal.hq.models import AppliedEvent, LookupAudit, MemberHold, MemberHome
from terminal.hq.policy import TrustPolicy
from terminal.hq.reckoning import reckon
from terminal.hq.refusals import column, failure, storable, transient
from terminal.hq.validation import CARD_HASH, BadEvent, validate
from terminal.loyalty import tiers
from terminal.loyalty.calendar import local_day, month_start
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.errors import Refused, UnknownCard, UnknownSale
from terminal.loyalty.operations import ExpiryResult, Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.card_states import FROZEN, RETIRED
from terminal.loyalty.store.hotpath import MemberRow
from terminal.loyalty.store.ledger_store import CardRef
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import CardState, Member
from terminal.protocol import ids
from terminal.protocol.hq_refusals import Refusal, refusal
from terminal.protocol.messages import Event, MemberRequest, MemberResponse

log = logging.getLogger(__name__)

HQ_IDENTITY = Identity("hq", "hq")
# Rows of member_hold changed since its last ANALYZE, and how many that ANALYZE counted (-1:
# never analyzed; ChainLedger.keep_hold_statistics).
HOLD_STATISTICS = (
    "SELECT s.n_mod_since_analyze, c.reltuples FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.relid = 'member_hold'::regclass"
)
# A sale's chain-wide id (a uuid5) is wanted twice per event: for the batch's query of the sales
# already recorded, and by its replay.
SWEEP_CHUNK = 1_000  # lots per transaction of HQ's expiry sweep (see ChainLedger.expire)
SWEEP_WORKERS = 2  # connections the sweep writes through at once on PostgreSQL (parallel_sweep)
PRUNE_HOLDS = 5_000  # settled holds deleted a round at most (ChainLedger.prune_holds)
VOID_CHUNK = 500  # timed-out holds voided a transaction (ChainLedger.void_expired_holds)
# member_hold is analyzed by the holds' upkeep once it changed by more rows than its statistics
# say it holds, and by this many at least (ChainLedger.keep_hold_statistics).
HOLD_STATISTICS_AFTER = 1_000
HOLD_THREADS = 4  # threads answering holds and voids (ChainLedger.holding, request_thread)
RETRIES = 5  # times a batch runs again after PostgreSQL broke a deadlock (database.retryable)
# With a time bound (ChainLedger.batch_seconds): events in the first transaction of a ledger, and
# the fewest in any (a transaction's own statements cost about 16 ms at 2.5 load: fewer events
# would spend most of it there).
FIRST_SLICE, MIN_SLICE = 50, 10
# With a time bound and the holds the collector answers (ChainLedger.holds_answered): the times
# batch_seconds a transaction may take when no till's hold or void is being answered and none
# was begun since the last transaction began. A transaction's own cost (its locks and first
# reads answered, its last writes and COMMIT) is paid once per transaction, so fewer of them
# drain a backlog faster; a hold waits for its member's transaction, so one that comes ends such
# a transaction once it has taken batch_seconds.
UNWAITED = 4
# Events after which a batch sends the writes it kept (terminal.hq.buffered) without waiting:
# PostgreSQL inserts them while the next events are replayed, where sent only at the COMMIT
# the collector waited for all of them (the server's time and the collector's added up). Each
# send is some fifteen statements (a table's inserts each, the moves, two plan settings) and a
# statement costs the collector about 230,000 instructions of psycopg and array building
# (callgrind, session 15: 1,000 events of bench_ingest's mix in transactions of 100 took
# 1.163 G instructions every 25 events, 1.094 G every 50, 1.059 G every 100; main before the
# session 1.153 G every 25, its applied events all at the COMMIT). 25 until session 15.
SEND_EVERY = 50
HOLD_INSERT = ("INSERT INTO member_hold (id, card_hash, points, state, store, terminal, "
               "created_us, expires_us) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)")
_chain_sale_id = lru_cache(maxsize=4096)(ids.chain_sale_id)
# The batch's retired cards on PostgreSQL (see ChainLedger._retired_later): Peewee built an IN
# list of every card the batch names, a node and a parameter each (2.6 ms a transaction of 100
# events under cProfile, bench_ingest.py --in-process --batch-ms 100).
RETIRED_AMONG = "SELECT card_hash FROM card_state WHERE state = %s AND card_hash = ANY(%b::text[])"
# The holds a batch's redemptions post (PostgreSQL): one statement whatever their number, so
# psycopg prepares it and the server plans it once; Peewee's IN list was new SQL text for each
# count, built by Peewee for every transaction that named a hold (about 0.23 ms of the ledger
# thread's CPU each on this machine) and parsed and planned anew by the server.
HOLDS_AMONG = ("SELECT id, card_hash, points, state, store, terminal, created_us, expires_us, "
               "settled_us FROM member_hold WHERE id = ANY(%b::text[])")
_RECORD_COLUMNS = ("id", "store", "terminal", "seq", "epoch", "kind", "wall_us", "applied_us",
                   "outcome", "detail", "points_in", "points_out", "first_seq", "last_seq")
# The body fields that name a member by card hash.
_CARD_KEYS = ("card_hash", "referrer_card_hash")
_POINTS_IN, _POINTS_OUT = _RECORD_COLUMNS.index("points_in"), _RECORD_COLUMNS.index("points_out")
_FIRST_SEQ, _LAST_SEQ = _RECORD_COLUMNS.index("first_seq"), _RECORD_COLUMNS.index("last_seq")


@dataclass(frozen=True)
class Outcome:
    event: Event
    result: str  # applied | flagged | duplicate | refused | deferred | busy
    detail: str = ""

    @property
    def ack(self) -> bool:
        """Deferred: the till publishes it again. Busy: another collector's batch holds what
        it writes; the collector applies it in its next batch."""
        return self.result not in ("deferred", "busy")


@dataclass(frozen=True)
class Disputed:
    """A hold :data:`holds.ASK` did not settle (ChainLedger.judge_ask): the ledger's answer
    (None: the full way decides) and whether the statement inserted the hold."""

    answered: MemberResponse | None
    inserted: bool


@dataclass
class _Recorded:
    """How far :meth:`ChainLedger._record_so_far` has taken a transaction's records, spans and
    the batch's entries: the next call starts there."""

    records: int = 0
    spans: int = 0
    entries: int = 0


class _Deferred(Exception):
    """The event needs another one first; leave it unacked."""


def _now() -> datetime:
    return datetime.now(UTC)


class ChainLedger:
    """HQ's ledger. Events are applied on its ledger thread (:attr:`thread`); member requests
    are answered on their own (:attr:`requests`), on a connection of their own, so a till's
    lookup or hold never queues behind an ingest batch (issue 11)."""

    def __init__(self, db: Database, rules: Rules, card_key: bytes,
                 hold_ttl: timedelta = timedelta(minutes=2),
                 trust: TrustPolicy | None = None) -> None:
        self.db = db
        self.trust = trust or TrustPolicy()  # what HQ lets a till do on its word (hq/policy.py)
        self.store = LedgerStore(db, rules, card_key, HQ_IDENTITY, outbox=False)
        # The store's statements, batched: its meta counters and writes per batch, not per event.
        self.sql = self.store.sql = BatchStatements(db)
        self.store.views = False  # HQ reads no member view off the operations it replays
        self.store.explained = False  # nor a sale's earning step by step (the points it reads)
        self.thread = LedgerThread(db, name="hq-ledger")
        # Member requests: their own thread (so their own connection) and their own store
        # (the batch's statements keep a batch's rows in memory; these read the database).
        self.requests = LedgerThread(db, name="hq-requests")
        # Holds and voids wait for their member's lock (a batch of that member, seconds under
        # a backlog): on threads of their own, so lookups and other members' holds do not
        # queue behind one that waits.
        self.holding = [LedgerThread(db, name=f"hq-holds-{n}") for n in range(HOLD_THREADS)]
        # The holds' upkeep (timed-out holds voided, settled ones pruned, member_hold's
        # statistics): on a thread and connection of its own, so no lookup queues behind it.
        self.upkeep = LedgerThread(db, name="hq-upkeep")
        self._audit_lock = threading.Lock()  # answered lookups come from several threads
        self.reader = LedgerStore(db, rules, card_key, HQ_IDENTITY, outbox=False)
        # Called inside each batch's transaction once its members are locked (tests hold a
        # batch open here to show what does not wait for it).
        self.in_batch: Callable[[list[Event]], None] | None = None
        # How long one ingest transaction should take (None: a batch is one transaction): the
        # members it locks are held that long, so a hold on one of them waits at most about
        # that (see apply). The collector sets it (posterm-hq collect --batch-ms).
        self.batch_seconds: float | None = None
        # The holds and voids the collector's member-request process is answering now and has
        # begun so far (terminal.hq.collect): with it a time-bounded transaction may take
        # UNWAITED times batch_seconds while tills ask none, and ends once it has taken
        # batch_seconds while one is answered (see apply); without it (None) each takes
        # batch_seconds.
        self.holds_answered: Callable[[], tuple[int, int]] | None = None
        self._holds_begun = 0  # holds_answered's count when the last transaction began
        self._per_event: float | None = None  # seconds an event took, the last transactions
        # A transaction planned long (holds_answered): from when it ends if a hold is being
        # answered, and the events such an end left for the next transaction.
        self._cut_at: float | None = None
        self._left: list[Event] = []
        self.hold_ttl = hold_ttl
        self._received = _now()  # when the batch being applied arrived (hq/reckoning.py)
        self._review: list[str] = []  # what the event being replayed is flagged for
        self._lookups: list[dict[str, Any]] = []  # answered, not yet in lookup_audit
        self._retired: dict[str, str] = {}  # the batch's retired cards (see _retired_later)
        self._holds: dict[str, MemberHold | None] = {}  # the batch's holds (see _prefetch_later)

    def close(self) -> None:
        self.thread.close()
        self.requests.close()
        for thread in self.holding:
            thread.close()
        self.upkeep.close()
        self.db.close()

    def expire(self, at: datetime, chunk: int = SWEEP_CHUNK,
               workers: int = SWEEP_WORKERS) -> ExpiryResult:
        """The chain-wide expiry sweep as of ``at`` (HQ's clock is NTP-synchronised: trusted).

        Each chunk of ``chunk`` lots is one HQ write transaction, committed before the next:
        on SQLite the sweep holds the one writer's lock for a chunk at a time (65 ms per 1,000
        lots, measured on the 2-core machine at 20,000 lots, under load), so collectors'
        batches and member requests go between chunks; on PostgreSQL it locks the chunk's
        members only (:meth:`BatchStatements.run` on the due lots). A sweep killed midway keeps
        the chunks it committed (the next run expires the rest). On PostgreSQL a chunk's
        entries and allocations go by COPY and its lot and balance updates by psycopg's
        pipelined executemany (:meth:`BatchStatements.many`), and its chunks go to ``workers``
        connections at once (:mod:`terminal.hq.parallel_sweep`: the same entries, numbered
        alike); SQLite's one writer sweeps alone."""
        moment = Moment(at, True, None)
        if workers > 1 and isinstance(self.db, PostgresqlDatabase):
            return parallel_sweep.expire(self.db, self.sql, self.store._writing, moment, chunk,
                                         workers)
        return self.store.expire(moment, chunk, lambda: member_writing(self.db))

    # -- events --------------------------------------------------------------------------------

    def apply(self, events: list[Event]) -> list[Outcome]:
        """Apply a batch: in one transaction, or with :attr:`batch_seconds` in consecutive
        transactions of as many events as that time allows, each committed before the next
        (the seconds an event took in the transactions before, the transaction's own
        statements included, say how many). A transaction locks its events' members until it
        commits, so a till's hold on one of them waits about that long at most instead of a
        whole batch (seconds under a backlog; bench_ingest.py part (c)). The events are
        applied in their order either way, and their rows are the same.

        The pace is learned from transactions of as many events as it asked for, not from one
        cut short by the end of its batch: such a transaction's own cost (its locks, reads and
        COMMIT; the connection's first statements in a ledger's first one) is shared by fewer
        events. A backlog's first event often comes alone, and its transaction of one event
        (59 ms) set the pace at 59 ms an event: the backlog after it went in transactions of
        MIN_SLICE, each paying that cost again, for its first 0.5-2 s (docs/hq.md, session 19).

        With :attr:`holds_answered` (the collector's member-request process counting the holds
        and voids it answers) a transaction may take UNWAITED times batch_seconds when none is
        being answered and none was begun since the last transaction began; such a one ends
        between two events once it has taken batch_seconds while one is being answered, the
        rest of its events going in the next: a hold on one of its members waits about as long
        as before, a backlog drained while tills ask nothing goes in a quarter of the
        transactions, and one drained while they ask goes as before. (Planned long whenever
        none was being answered, or ended early whatever their plan, transactions were more
        and smaller under (c)'s holds, the reads of the events they left wasted.) A hold
        answered by another collector is not counted: it may wait for the longer transaction
        (docs/hq.md, session 19)."""
        if self.batch_seconds is None:
            return self._apply_one_transaction(events)
        answered = self.holds_answered
        outcomes: list[Outcome] = []
        try:
            while events:
                bound = self.batch_seconds
                if answered is not None:
                    now, begun = answered()
                    if not now and begun == self._holds_begun:  # no till asked meanwhile
                        bound *= UNWAITED
                    self._holds_begun = begun
                size = max(MIN_SLICE, FIRST_SLICE if self._per_event is None
                           else int(bound / self._per_event))
                part, events = events[:size], events[size:]
                began = time.perf_counter()
                if bound > self.batch_seconds:  # planned long: a hold that comes ends it
                    self._cut_at = began + self.batch_seconds
                outcomes += self._apply_one_transaction(part)
                left, self._left, self._cut_at = self._left, [], None
                events = left + events
                if left or len(part) < size:  # ended early, or the batch's last events: no pace
                    continue
                took = (time.perf_counter() - began) / len(part)
                self._per_event = took if self._per_event is None else (
                    self._per_event + took) / 2
        finally:
            self._cut_at, self._left = None, []
        return outcomes

    def _apply_one_transaction(self, events: list[Event]) -> list[Outcome]:
        """Apply events in one transaction (:meth:`_apply_batch`). If it fails for any reason
        but the database's own (:func:`refusals.transient`), each event is applied again in a
        transaction of its own, so the one that fails is refused alone (recorded, acked) and
        the others commit. A batch PostgreSQL rolled back to break a deadlock runs again, up to
        RETRIES times."""
        try:
            return self._apply_retrying(events)
        except Exception as exc:
            if transient(exc):
                raise
            log.warning("a batch of %d events failed (%s: %s): applying them one by one",
                        len(events), type(exc).__name__, exc)
        outcomes: list[Outcome] = []
        for event in events:
            try:
                outcomes += self._apply_retrying([event])
            except Exception as exc:
                if transient(exc):
                    raise
                outcomes.append(self._refuse_alone(event, exc))
        return outcomes

    def _apply_retrying(self, events: list[Event]) -> list[Outcome]:
        for _ in range(RETRIES - 1):
            try:
                return self._apply_wrapped(events)
            except Exception as exc:
                if not retryable(exc):
                    raise
                log.info("a batch of %d events ran into another writer (%s): again",
                         len(events), exc)
        return self._apply_wrapped(events)  # the last attempt: whatever it raises is the caller's

    def _apply_wrapped(self, events: list[Event]) -> list[Outcome]:
        """:meth:`_apply_batch`, the driver's errors raised as Peewee's (:func:`transient` and
        :meth:`_apply_one` know a database's error by Peewee's classes). In pipeline mode a
        statement's error reaches whatever fetches next, and the batch's reads fetch from
        psycopg's cursors themselves (kept.py, batch.py), outside Peewee's execute."""
        with __exception_wrapper__:
            return self._apply_batch(events)

    def _refuse_alone(self, event: Event, exc: BaseException) -> Outcome:
        detail = failure(exc)
        log.warning("event %s (%s from %s/%s) refused: %s", event.id, event.kind, event.store,
                    event.terminal, detail)
        with member_writing(self.db, self._lock_keys([event])):
            if self.sql.existing(AppliedEvent._meta.table_name, [event.id]):
                return Outcome(event, "duplicate")  # another collector has it now
            self.sql.insert_rows(AppliedEvent._meta.table_name, _RECORD_COLUMNS,
                                 [self._record(event, "refused", detail)])
        return Outcome(event, "refused", detail)

    def _apply_batch(self, events: list[Event]) -> list[Outcome]:
        """Apply a batch in one transaction (one commit), each event in its own savepoint.

        Per batch, not per event (on PostgreSQL each statement is a round trip, and round trips
        were most of ingest's time): one query finds the ids already applied and one the sales
        already recorded, the meta counters are kept in memory (:mod:`terminal.hq.batch`), the
        store's writes wait for the next read, one query after the events reads what each one
        moved (the entries in its span of the sequence) and one insert records every outcome."""
        outcomes = []
        self._left = []
        self._received = _now()  # bounds what this batch's events may claim (hq/reckoning.py)
        self._retired, self._holds = {}, {}
        # What the batch writes, locked before anything is read: its members, sales and events
        # (database.lock_free_members). A hold on one of its members waits for this batch, a
        # hold on any other does not, and batches of other members commit side by side. What
        # another collector's batch holds is not waited for: its events come back "busy", for
        # the collector's next batch (so a batch never waits for another's COMMIT). The
        # pipeline first: the BEGIN goes with the locks and the COMMIT with the last writes
        # (each was a round trip of its own, a transaction's fixed cost; see apply). The ids
        # applied before and the sales recorded are asked with the locks, of every event, and
        # answered in the same wait (busy events' answers go unused), and so are the retired
        # cards among those the events name (a wait of its own before the transaction, one of
        # five a transaction: the cards that carry them on are locked once they are known).
        with pipelined_writing(self.db):
            self.sql.plan_reads()  # its reads over arrays, for the arrays at hand
            locked = lock_free_members_later(self.db, self._lock_keys(events))
            retired = self._retired_later(events)
            applied = self.sql.existing_later(AppliedEvent._meta.table_name,
                                              [event.id for event in events])
            prefetched = self._prefetch_later(events)
            sales = {self._sale_id(event) for event in events if event.kind == "sale"} - {None}
            records: list[list[Any]] = []
            spans: list[tuple[int, int, list[Any]]] = []  # (after seq, up to seq, its record)
            with self.sql.batch(sales):  # type: ignore[arg-type]
                busy = locked()
                self._retired = retired()
                if self._retired:  # rare: a retired card named; lock the cards carrying them
                    busy |= lock_free_members_later(self.db, set(self._retired.values()))()
                prefetched()
                if busy:
                    outcomes += [Outcome(event, "busy") for event in events
                                 if self._lock_keys([event]) & busy]
                    events = [event for event in events if not self._lock_keys([event]) & busy]
                if self.in_batch is not None:
                    self.in_batch(events)
                seen = applied()
                recorded = _Recorded()  # records, spans and entries kept for the writes so far
                answered, cut_at = self.holds_answered, self._cut_at
                for n, event in enumerate(events, 1):
                    if event.id in seen:
                        outcomes.append(Outcome(event, "duplicate"))
                        continue
                    outcome = self._apply_one(event, records, spans)
                    if outcome.ack:
                        seen.add(event.id)
                    outcomes.append(outcome)
                    if n % SEND_EVERY == 0:
                        if self.sql.writes is not None:  # PostgreSQL: see _record_so_far
                            self._record_so_far(records, spans, recorded)
                        self.sql.flush()  # inserted while the next events are replayed
                    if cut_at is not None and answered is not None and n < len(events) \
                            and answered()[0] and time.perf_counter() >= cut_at:
                        self._left = events[n:]  # a hold may wait for one of its members
                        break
                self._record_so_far(records, spans, recorded)
                # Leaving the batch writes the meta counters, last: on PostgreSQL their rows
                # are the one thing every batch writes, locked from there to the COMMIT.
        return outcomes

    def _prefetch_later(self, events: list[Event]) -> Callable[[], None]:
        """What the events' replays read, asked for the batch at once and kept when the
        returned function is called (PostgreSQL; :meth:`BatchStatements.prefetch_later`): the
        members they name, those members' counters for the events' days, open lots and sales
        in the earliest tier window, the refunds' rows, and the holds the redemptions post.
        Asked with the locks, before it is known which events are busy or applied already
        (their rows are read and go unused), and answered in the same wait as the locks: that
        was a wait of its own, and the holds another (two of a transaction's five). The cards
        retired cards carry on to are known only then: read after, a wait when there are any."""
        if not events:
            return lambda: None
        cards = {value for event in events for key in _CARD_KEYS
                 if isinstance(value := event.body.get(key), str)}
        zone = self.store.rules.zone
        times = [min(event.wall_time, self._received) for event in events]
        days = {local_day(at, zone).isoformat() for at in [*times, self._received]}
        since = to_micros(self.store._window_start(min(times)))
        refunds = [found for event in events if (found := self._refund_named(event))]
        wanted = sorted({hold for event in events if (hold := self._hold_named(event))})
        found: Any = ()
        if wanted and isinstance(self.db, HqPostgresDatabase):
            found = MemberHold.raw(HOLDS_AMONG, array(wanted, "text")).execute()
        elif wanted:
            found = MemberHold.select().where(MemberHold.id.in_(wanted)).execute()
        kept = self.sql.prefetch_later(cards, days, since, [sale for sale, _ in refunds],
                                       [refund for _, refund in refunds])

        def take() -> None:
            kept()
            self._holds = dict.fromkeys(wanted)
            self._holds.update((hold.id, hold) for hold in found)
            if self._retired:  # their members are written too
                self.sql.prefetch(self._retired.values(), days, since)
        return take

    @staticmethod
    def _refund_named(event: Event) -> tuple[str, str] | None:
        """The chain ids of the sale a refund or void refunds and of the refund itself (see
        :meth:`_replay_refund`)."""
        if event.kind not in ("refund", "void"):
            return None
        body = event.body
        try:
            return (ids.chain_sale_id(event.store, event.terminal, body["sale"]),
                    ids.chain_sale_id(event.store, event.terminal, f"refund:{body['refund']}"))
        except (KeyError, TypeError, ValueError):
            return None  # malformed: its replay refuses it

    @staticmethod
    def _hold_named(event: Event) -> str | None:
        """The hold a sale's or exchange's redemption posts (see :meth:`_redemption`)."""
        body = event.body
        try:
            if event.kind == "sale" and body.get("redeem_points"):
                return body.get("hold") or ids.hold_id(event.store, event.terminal, body["sale"])
            if event.kind == "exchange":
                return body.get("hold") or ids.hold_id(event.store, event.terminal,
                                                       body["exchange"], "exchange")
        except (KeyError, TypeError, ValueError):
            return None  # malformed: its replay refuses it
        return None

    @staticmethod
    def _sale_id(event: Event) -> str | None:
        sale = event.body.get("sale")
        if not isinstance(sale, str):
            return None
        try:
            return _chain_sale_id(event.store, event.terminal, sale)
        except (TypeError, ValueError):
            return None

    def _apply_one(self, event: Event, records: list[list[Any]],
                   spans: list[tuple[int, int, list[Any]]]) -> Outcome:
        try:
            validate(event)
        except BadEvent as exc:
            return self._refused(event, exc, records)
        mark, before = self.sql.mark(), self.sql.seq
        self._review: list[str] = []  # what the replay found for review: the event is flagged
        try:
            # The driver's errors as Peewee's (see _apply_wrapped): a deadlock that reaches
            # this event's first read is the database's error, not the event's.
            with __exception_wrapper__, unit(self.db):
                detail = self._replay(event)
        except Exception as exc:
            self.sql.restore(mark)  # the savepoint was rolled back: so are the caches
            self._holds.clear()  # read again when asked
            if isinstance(exc, _Deferred):
                return Outcome(event, "deferred", str(exc))
            if isinstance(exc, PeeweeException):
                raise  # the database's error: the batch fails, and apply() finds the event
            return self._refused(event, exc, records)
        result = "flagged" if self._review else "applied"
        if self._review:
            detail = "; ".join([*self._review, detail])
            log.warning("event %s (%s from %s/%s) flagged for review: %s", event.id, event.kind,
                        event.store, event.terminal, detail)
        record = self._record(event, result, detail)
        records.append(record)
        after = self.sql.seq
        if after > before:
            spans.append((before, after, record))
            record[_FIRST_SEQ], record[_LAST_SEQ] = before + 1, after
        return Outcome(event, result, detail)

    def _refused(self, event: Event, exc: Exception, records: list[list[Any]]) -> Outcome:
        """Record ``event`` as refused for good: a rule's refusal, or whatever else it raised
        while it was replayed (its savepoint rolled back)."""
        refused = isinstance(exc, Refused)
        detail = storable(f"{exc.rule}: {exc}" if refused else failure(exc))
        log.warning("event %s (%s from %s/%s) refused: %s", event.id, event.kind,
                    event.store, event.terminal, detail)
        records.append(self._record(event, "refused", detail))
        return Outcome(event, "refused", storable(str(exc)) if refused else detail)

    def _record_so_far(self, records: list[list[Any]], spans: list[tuple[int, int, list[Any]]],
                       recorded: _Recorded) -> None:
        """The ``applied_event`` rows of the events applied since the last call (``recorded``:
        how many records, spans and entries earlier calls took, moved on here), their points
        counted, kept with the batch's writes (PostgreSQL: sent with the next flush, while the
        next events are replayed; until session 15 every row of a transaction went at its end,
        and the COMMIT waited for the server to insert them all). Between events only: every
        entry of the events before is final then (an event rolled back took its own entries
        with it), and the next events' entries come later in the sequence. The rows, their
        order and their points are the same as when all went at the end."""
        self._count_points(spans[recorded.spans:], self.sql.entries[recorded.entries:])
        self.sql.insert_rows(AppliedEvent._meta.table_name, _RECORD_COLUMNS,
                             records[recorded.records:])
        recorded.records, recorded.spans = len(records), len(spans)
        recorded.entries = len(self.sql.entries)

    @staticmethod
    def _count_points(spans: list[tuple[int, int, list[Any]]],
                      inserted: list[tuple[int, int]]) -> None:
        """Each applied event's points in and out: the entries in its span of the sequence,
        as the batch inserted them (``inserted``: BatchStatements.entries, the spans' own; read
        back from the table they were a round trip a batch, waiting for all its writes)."""
        if not spans:
            return
        entries = iter(sorted(inserted))
        entry = next(entries, None)
        for after, upto, record in spans:
            while entry is not None and entry[0] <= upto:
                if entry[0] > after:
                    points = entry[1]
                    record[_POINTS_IN if points > 0 else _POINTS_OUT] += abs(points)
                entry = next(entries, None)

    @staticmethod
    def _record(event: Event, outcome: str, detail: str) -> list[Any]:
        """The event's ``applied_event`` row, in ``_RECORD_COLUMNS`` order (points counted
        later, by :meth:`_count_points`; the span set by :meth:`_apply_one`)."""
        return [event.id, event.store, event.terminal, column(event.seq, 64),
                column(event.epoch, 32), event.kind, to_micros(event.wall_time),
                to_micros(_now()), outcome, storable(detail), 0, 0, None, None]

    def _retired_later(self, events: list[Event]) -> Callable[[], dict[str, str]]:
        """Of the cards the batch names, those HQ retired (lost, merged away) -> the card that
        carries their member now: one query per batch (none when no card is named), asked now
        (PostgreSQL: sent in the batch's pipeline) and read when called; the cards carrying
        them on are read then, one query each (none when no card was retired)."""
        named = {value for event in events for key in _CARD_KEYS
                 if isinstance(value := event.body.get(key), str) and CARD_HASH.fullmatch(value)}
        if not named:
            return lambda: {}
        if isinstance(self.db, HqPostgresDatabase):  # one array: no IN list of a batch's cards
            rows = self.db.execute_sql(RETIRED_AMONG, (RETIRED, array(sorted(named), "text")))
        else:
            rows = (CardState.select(CardState.card_hash).where(
                (CardState.state == RETIRED) & CardState.card_hash.in_(sorted(named))).tuples()
                .execute())
        return lambda: {card_hash: self.store.successor(card_hash) for (card_hash,) in rows}

    def _lock_keys(self, events: list[Event]) -> set[str]:
        """What the events write, as lock keys: the card hashes they name and the cards
        retired ones carry on to (one member's writes serialise), the chain ids of the sales
        they record or refund (two refunds of one sale), and the id of an event that names
        neither (the same event delivered to two collectors)."""
        keys: set[str] = set()
        for event in events:
            named = [value for key in _CARD_KEYS if isinstance(value := event.body.get(key), str)]
            keys.update(named, (self._retired[card] for card in named if card in self._retired))
            sale = self._sale_id(event)
            if sale is not None:
                keys.add(sale)
            elif not named:
                keys.add(event.id)
        return keys

    def _carried_on(self, event: Event) -> dict[str, Any]:
        """The event's body with a retired card replaced by its successor: a till that had not
        heard of the replacement yet sold to the member's old card, and the member's points
        follow the member. A retired card cannot register again."""
        body = event.body
        found = {key: self._retired[value] for key in _CARD_KEYS
                 if isinstance(value := body.get(key), str) and value in self._retired}
        if not found:
            return body
        if event.kind == "register" and "card_hash" in found:
            raise Refused("the card was retired at HQ (reported lost or merged): it cannot "
                          "join again", "member.card_retired")
        return {**body, **found}

    def _replay(self, event: Event) -> str:
        body, where = self._carried_on(event), f"{event.store}/{event.terminal}"
        moment, note = reckon(event.wall_time, event.time_trusted, self._received)
        if note:
            self._review.append(note)
        try:
            handler = getattr(self, f"_replay_{event.kind}")
            return handler(event, body, where, moment)
        except (UnknownCard, UnknownSale) as exc:
            raise _Deferred(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused(f"{event.kind} body is malformed: {exc!r}", "event.body") from None

    @staticmethod
    def _card(body: dict[str, Any], key: str = "card_hash") -> CardRef | None:
        value = body.get(key)
        return CardRef(value) if value is not None else None

    def _replay_register(self, event: Event, body: dict[str, Any], where: str,
                         moment: Moment) -> str:
        card = self._card(body)
        if card is None:
            raise Refused("a registration without a card hash", "event.body")
        if self.sql.member(card.hash) is not None:
            return "already a member of the chain: nothing to add"
        # The till sends the card's last four digits beside its hash, for people to recognise it.
        card = CardRef(card.hash, str(body.get("card_last4") or "")[-4:])
        referrer = self._card(body, "referrer_card_hash")
        if referrer is not None and self.sql.member(referrer.hash) is None:
            raise _Deferred("the referrer's registration has not arrived")
        birthday = body.get("birthday")
        view = self.store.register(Registration(
            card=card,  # type: ignore[arg-type]  # the store accepts a CardRef for a card
            name=body.get("name") or "",
            birthday=date.fromisoformat(birthday) if birthday else None,
            referrer_card=referrer,  # type: ignore[arg-type]
            operator=where,
        ), moment)
        phone = body.get("phone_hash")
        if isinstance(phone, str) and phone:
            # The till sends the phone's keyed hash only: HQ finds a member by it (the console).
            Member.update(phone_hash=phone, phone_last4=str(body.get("phone_last4") or "")[-4:]
                          ).where(Member.id == view.id).execute()
        self.sql.insert_rows(MemberHome._meta.table_name, ("member", "store", "since_us"),
                             [(view.id, event.store, to_micros(moment.at))])
        return f"registered at {where}"

    def _replay_consent(self, event: Event, body: dict[str, Any], where: str,
                        moment: Moment) -> str:
        """A member's answer at a till to member care's question: recorded by care
        (:mod:`terminal.hq.care.till`), nothing of the ledger changes."""
        return record_from_till(body, event.store, event.terminal, moment.at,
                                self.store.card_key)

    def _replay_import(self, event: Event, body: dict[str, Any], where: str,
                       moment: Moment) -> str:
        """A till recorded a member it found at HQ: a link, never a second registration."""
        card = self._card(body)
        if card is None:
            raise Refused("an import without a card hash", "event.body")
        member = self.sql.member(card.hash)
        if member is None:
            # The till imports only what HQ answered, so HQ must hold the member already.
            raise Refused("an import of a member HQ does not hold", "event.import")
        return f"known at HQ: {where} serves the member (tier {body.get('tier')}), nothing added"

    def _replay_sale(self, event: Event, body: dict[str, Any], where: str,
                     moment: Moment) -> str:
        lines = [Line(line["sku"], line["qty"], line["price_fen"], line.get("name", ""),
                      line.get("category", "")) for line in body["lines"]]
        sale_id = _chain_sale_id(event.store, event.terminal, body["sale"])
        redeemed = body.get("redeem_points") or 0
        hold, points = self._redemption(  # the hold's id is a uuid5: made only when it is used
            event, body, redeemed, (body.get("hold") or ids.hold_id(
                event.store, event.terminal, body["sale"])) if redeemed else "", moment)
        result = self.store.sale(SaleRequest(
            id=sale_id, lines=lines, card=self._card(body),  # type: ignore[arg-type]
            tender=body["tender"], redeem_points=points, operator=body.get("operator", ""),
        ), moment, online=hold is not None, reconcile=f"{where} sale {body['sale']}")
        if hold is not None:
            self._post_hold(hold)
        self._compare("points_earned", body.get("points_earned"), result.points_earned)
        return (f"earned {result.points_earned} (till: {body.get('points_earned')}), "
                f"redeemed {result.points_redeemed}")

    def _redemption(self, event: Event, body: dict[str, Any], points: int, hold_id: str,
                    moment: Moment) -> tuple[MemberHold | None, int]:
        """The hold that covers a redemption of ``points``, and the points HQ takes: all of
        them with a hold, else only within the offline allowance (:mod:`terminal.hq.holds`)."""
        card_hash = body.get("card_hash")
        if not points or card_hash is None:
            return None, points
        found = self._batch_hold(hold_id)
        hold = holds.covering(found, card_hash, points, event.store, event.terminal)
        if hold is not None or holds.posted(found):
            return hold, points  # posted: the store refuses the record as a repeat
        found = self.sql.member_today(card_hash, local_day(moment.earn_time,
                                                           self.store.rules.zone).isoformat())
        used = found[1].offline_redeemed if found is not None else 0
        note = holds.over_allowance(points, self.store.rules.redeem.offline_allowance, used)
        if note:
            self._review.append(note)
            return None, 0
        return None, points

    def _batch_hold(self, hold_id: str) -> MemberHold | None:
        """The hold as this batch knows it (:meth:`_prefetch_later`), else as stored."""
        if hold_id not in self._holds:
            self._holds[hold_id] = MemberHold.get_or_none(MemberHold.id == hold_id)
        return self._holds[hold_id]

    def _post_hold(self, hold: MemberHold) -> None:
        """Post ``hold`` in the sale's transaction, without waiting (holds.post)."""
        holds.post(self.sql, hold, to_micros(_now()))
        self._holds[hold.id] = hold

    def _compare(self, what: str, claimed: object, computed: int) -> None:
        """HQ trusts arithmetic, not terminals: a till's figure that differs from what HQ
        computed by the same rules is noted for review (HQ's figure is what is recorded)."""
        if claimed is not None and claimed != computed:
            self._review.append(f"{what}: the till said {claimed}, HQ computed {computed}")

    def _replay_refund(self, event: Event, body: dict[str, Any], where: str,
                       moment: Moment) -> str:
        sale_id = ids.chain_sale_id(event.store, event.terminal, body["sale"])
        result = self.store.refund(
            sale_id, [(line["sku"], line["qty"]) for line in body["lines"]], moment,
            operator=body.get("operator", ""),
            refund_id=ids.chain_sale_id(event.store, event.terminal, f"refund:{body['refund']}"),
            kind=event.kind)
        if not result.repeated:
            self._compare("points_reversed", body.get("points_reversed"), result.points_reversed)
            self._compare("points_restored", body.get("points_restored"), result.points_restored)
        # The receipt's number leads the detail HQ keeps: hq/receipts.py finds it by that.
        return (f"{body['refund']}: reversed {result.points_reversed}, "
                f"restored {result.points_restored}")

    _replay_void = _replay_refund

    def _replay_exchange(self, event: Event, body: dict[str, Any], where: str,
                         moment: Moment) -> str:
        goods = self.store.rules.redeem.goods.get(body["sku"])
        cost = goods.points * body["qty"] if goods is not None else 0
        hold, points = self._redemption(
            event, body, cost, body.get("hold") or ids.hold_id(
                event.store, event.terminal, body["exchange"], "exchange"), moment)
        if points < cost:
            raise Refused(self._review.pop(), "redeem.offline_allowance")
        result = self.store.exchange(
            self._card(body), body["sku"], body["qty"], moment,  # type: ignore[arg-type]
            online=hold is not None, operator=body.get("operator", ""),
            reconcile=f"{where} exchange {body['exchange']}",
            # Filed under a chain-wide id (a till's ids never contain "/", so no sale's is it):
            # the same exchange twice is refused by the store even without applied_event.
            exchange_id=ids.chain_sale_id(event.store, event.terminal,
                                          f"exchange/{body['exchange']}"))
        if hold is not None:
            self._post_hold(hold)
        self._compare("points", body.get("points"), result.points)
        return (f"exchanged {result.qty} x {result.sku} for {result.points}"
                f"{', hold posted' if hold is not None else ''}")

    def _replay_adjust(self, event: Event, body: dict[str, Any], where: str,
                       moment: Moment) -> str:
        member = self.sql.member(body["card_hash"])
        if member is None:
            raise _Deferred("the member's registration has not arrived")
        home = MemberHome.get_or_none(MemberHome.member == member.id)
        adjustments.check(self.trust, event.store, body.get("operator") or "", body["points"],
                          home.store if home is not None else None,
                          adjustments.adjusted_today(member.id, moment.earn_time,
                                                     self.store.rules.zone))
        self.store.adjust(self._card(body), body["points"],  # type: ignore[arg-type]
                          f"{body['reason']} (at {where})", body.get("operator") or where,
                          moment, reconcile=f"{where} adjustment {body['entry']}")
        return f"adjusted {body['points']}"

    @staticmethod
    def _replay_day_report(event: Event, body: dict[str, Any], where: str,
                           moment: Moment) -> str:
        return day_reports.record(event.store, event.terminal, body, moment)

    # -- member requests -----------------------------------------------------------------------

    def answer(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        """A till's member request (on :attr:`requests`): a lookup reads one snapshot and
        waits for no writer, and so does a catch-up of member states (one statement); a hold or
        void locks only its member (database.member_writing)."""
        if request.op == "states":  # a till's catch-up: a read of what was published
            page = publish.catch_up(self.db, request.since or 0)
            return MemberResponse("states", True, _now(), states=tuple(page.states),
                                  through=page.through, more=page.more)
        handler = {"lookup": self._lookup, "hold": self._hold, "void": self._void,
                   "post": self._post}[request.op]
        malformed = self.malformed(request)
        if malformed is not None:
            return malformed
        if request.op == "lookup":
            response = self._quick_lookup(request)
            if response is None:  # a tier review is due: the full way, in one snapshot
                with snapshot(self.db):
                    response = handler(request, store, terminal)
        elif request.op == "hold" and isinstance(self.db, HqPostgresDatabase):
            response = self._hold_at_once(request, store, terminal)
        else:
            # Pipelined (PostgreSQL): the BEGIN, the member's lock and the first read go out
            # together and are answered at once, then the writes with the COMMIT.
            with pipelined_writing(self.db, self._request_members(request)):
                response = handler(request, store, terminal)
        if request.op == "lookup":  # audited: who looked up whom, written by write_audit()
            with self._audit_lock:
                self._lookups.append({"store": store, "terminal": terminal,
                                      "card_hash": request.member,
                                      "at_us": to_micros(response.hq_time),
                                      "found": response.ok})
        return response

    def malformed(self, request: MemberRequest) -> MemberResponse | None:
        """The refusal of a request that names its member by anything but a card hash."""
        if request.member is not None and not CARD_HASH.fullmatch(request.member):
            return self.refuse(request, refusal("member.form"))
        return None

    @staticmethod
    def _request_members(request: MemberRequest) -> list[str]:
        """The member a hold or void request writes: its own, or its hold's."""
        if request.member is not None:
            return [request.member]
        hold = MemberHold.get_or_none(MemberHold.id == request.hold_id)
        return [hold.card_hash] if hold is not None else []

    def request_thread(self, request: MemberRequest) -> LedgerThread:
        """Where ``request`` is answered: a lookup on :attr:`requests` (it waits for no lock),
        a hold or void on a :attr:`holding` thread with nothing to do: its member's (or hold
        id's) if that one is idle, else the idle one first in line, else the one with the
        fewest calls waiting (:attr:`LedgerThread.pending`, counted by the collector's awaits).

        It went to its member's thread whatever that thread was doing: a hold waiting there for
        a batch's lock on another member (up to a transaction, 100 ms by default, longer on a
        loaded host) held it up, though its own member was free; under bench_ingest.py (c)'s
        backlog 30 of 1,017 holds (3%: the p99) queued so, for up to 363 ms. Holds of one
        member on two threads wait for each other at the member's lock, as before."""
        if request.op not in ("hold", "void"):
            return self.requests
        own = self.holding[member_key(request.member or request.hold_id or "") % HOLD_THREADS]
        if own.pending == 0:
            return own
        return min(self.holding, key=lambda thread: thread.pending)

    def write_audit(self) -> int:
        """Write the lookups answered since the last call, in one transaction: a lookup stays a
        read, and a second's lookups cost one commit (a collector killed loses at most the
        lookups since its last call, which the collector makes every second)."""
        with self._audit_lock:
            rows, self._lookups = self._lookups, []
        if rows:
            with member_writing(self.db):  # no member's: an insert waits for nobody
                LookupAudit.insert_many(rows).execute()
        return len(rows)

    def refuse(self, request: MemberRequest, why: Refusal) -> MemberResponse:
        """``request`` refused for ``why``: its English sentence, its code and values (the
        answers on the event loop too: terminal.hq.loop_holds). The collector leaves the code
        and values out for a till that did not ask for them (terminal.hq.collector.for_till)."""
        return MemberResponse(request.op, False, _now(), member=request.member,
                              hold_id=request.hold_id, error=why.error, code=why.code,
                              values=why.values or None)

    def _standing(self, member: Member) -> tuple[str, int]:
        """The member's tier and balance now, as the engine shows them: every review due by now
        applied, lots expired by now gone, swept or not."""
        return self.reader.standing(member, Moment(_now(), True))

    def _available(self, member: Member) -> tuple[str, int]:
        """The member's tier and the points they may redeem now: the balance as the engine
        shows it (:meth:`_standing`) less their pending holds."""
        pending = (MemberHold.select(fn.COALESCE(fn.SUM(Case(None, [(
            (MemberHold.state == "pending") & (MemberHold.expires_us > to_micros(_now())),
            MemberHold.points)])), 0))  # by card hash alone, as lookups.LOOKUP
                   .where(MemberHold.card_hash == member.card_hash).scalar())
        tier, balance = self._standing(member)
        return tier, balance - int(pending)

    def _quick_lookup(self, request: MemberRequest) -> MemberResponse | None:
        """A lookup in one statement (:mod:`terminal.hq.lookups`), or None to take the full
        way (:meth:`_lookup`)."""
        now = _now()
        found = lookups.lookup(self.db, self.store.rules, request.member or "", now)
        if found is None:
            return None
        if found.error is not None:
            return self.refuse(request, found.error)
        return MemberResponse("lookup", True, now, member=request.member,
                              balance=found.available, tier=found.tier)

    def _lookup(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        blocked = self._blocked(request.member)
        if blocked is not None and blocked.state == RETIRED:
            return self.refuse(request, refusal("card.retired", reason=blocked.reason or ""))
        member = Member.get_or_none(Member.card_hash == request.member)
        if member is None:
            return self.refuse(request, refusal("member.unknown"))
        tier, available = self._available(member)
        return MemberResponse("lookup", True, _now(), member=request.member,
                              balance=available, tier=tier)

    @staticmethod
    def _blocked(card_hash: str | None) -> CardState | None:
        row = CardState.get_or_none(CardState.card_hash == card_hash)
        return row if row is not None and row.state in (FROZEN, RETIRED) else None

    def _hold(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        """A hold: one statement reads what it needs (:func:`holds.read`), then the till's
        older pending holds on the member are voided and this one inserted (SQLite, and
        PostgreSQL's full way: see :meth:`_hold_at_once`)."""
        now = _now()
        now_us = to_micros(now)
        found = holds.read(self.db, request, store, terminal, now_us)
        answered = self._hold_refused(request, store, terminal, found, now)
        if answered is not None:
            return answered
        member = found.member
        assert member is not None  # refused above when unknown
        if self._review_due(member, now):  # the tier by the window's spend (the engine's way)
            tier, balance = self._standing(member)  # type: ignore[arg-type]
        else:
            tier, balance = member.tier, member.balance - found.unswept
        granted = self._hold_granted(request, found, now, tier, balance)
        if granted.ok:
            holds.supersede(member.card_hash, store, terminal, now_us)
            self.db.execute_sql(HOLD_INSERT.replace("?", self.db.param), (
                request.hold_id, member.card_hash, request.points, store, terminal, now_us,
                to_micros(now + self.hold_ttl)))
        return granted

    def _hold_at_once(self, request: MemberRequest, store: str,
                      terminal: str) -> MemberResponse:
        """A hold on PostgreSQL in one statement and one wait for the server: migration 33's
        function takes the member's lock, then runs the statement that reads, decides and
        writes (:data:`holds.ASK`), in autocommit (:func:`holds.ask`; until session 14 the
        BEGIN, the lock, ASK and the COMMIT went out together, pipelined). Under a backlog
        each wait is also a wait for a CPU (the server's backend, then this thread); a hold
        waited twice (the read, then the writes with the COMMIT) until session 12.

        The statement grants only what :meth:`_hold` would; the answer is then decided here
        from the row it read, by the same code as :meth:`_hold`'s, so the words of a refusal
        are the same. Where the statement cannot decide (the member's monthly tier review is
        due) or the two differ (logged as an error: a bug), the hold goes the full way
        (:meth:`_hold`) in a transaction of its own; a hold the statement granted and the
        ledger refuses is deleted and refused (a voided one would still cover a redemption)."""
        now = _now()
        row = holds.ask(self.db, holds.lock_key(request),
                        self.ask_parameters(request, store, terminal, now))
        found, inserted = holds.asked(row, request)
        judged = self.judge_ask(request, store, terminal, found, inserted, now)
        if isinstance(judged, MemberResponse):
            return judged
        return self.hold_again(request, store, terminal, judged)

    def ask_parameters(self, request: MemberRequest, store: str, terminal: str,
                       now: datetime) -> tuple[Any, ...]:
        """:data:`holds.ASK`'s parameters for ``request`` asked at ``now``."""
        return holds.ask_parameters(request, store, terminal, to_micros(now),
                                    to_micros(now + self.hold_ttl),
                                    to_micros(month_start(now, self.store.rules.zone)),
                                    self.trust.holds, self.store.rules)

    def judge_ask(self, request: MemberRequest, store: str, terminal: str, found: holds.Read,
                  inserted: bool, now: datetime) -> MemberResponse | Disputed:
        """The answer to a hold from what :data:`holds.ASK` read (``found``) and whether it
        granted it (``inserted``), decided by the full way's code (on any thread, or the event
        loop: it reads nothing); :class:`Disputed` for :meth:`hold_again` where the statement
        could not decide (a tier review due) or decided otherwise (logged as an error)."""
        answered, grants = self._hold_refused(request, store, terminal, found, now), False
        if answered is None:
            member = found.member
            assert member is not None  # refused above when unknown
            if not self._review_due(member, now):
                answered = self._hold_granted(request, found, now, member.tier,
                                              member.balance - found.unswept)
                grants = answered.ok
        if answered is not None and grants == inserted:
            return answered
        if answered is not None or inserted:
            log.error("hold %s: the one statement %s it, the ledger %s; taken the full way",
                      request.hold_id, "granted" if inserted else "refused",
                      "refuses it" if answered is not None and not grants else
                      "grants it" if grants else "takes the full way (tier review due)")
        return Disputed(answered, inserted)

    def hold_again(self, request: MemberRequest, store: str, terminal: str,
                   disputed: Disputed) -> MemberResponse:
        """A hold :meth:`judge_ask` did not answer: the full way, in a transaction of its own
        (on a thread of this ledger's: Peewee's connection)."""
        if disputed.inserted:  # strict: what the statement granted is not granted
            # Deleted, not voided: a voided hold still covers its till's redemption (HQ said
            # yes and the till sold, holds.covering), and HQ says no to this one.
            with pipelined_writing(self.db, self._request_members(request)):
                MemberHold.delete().where(
                    (MemberHold.id == request.hold_id) & (MemberHold.state == "pending")
                ).execute()
            if disputed.answered is not None:
                return disputed.answered
        return self._hold_full_way(request, store, terminal)

    def _hold_full_way(self, request: MemberRequest, store: str,
                       terminal: str) -> MemberResponse:
        with pipelined_writing(self.db, self._request_members(request)):
            return self._hold(request, store, terminal)

    def _review_due(self, member: MemberRow, now: datetime) -> bool:
        reviewed = member.tier_reviewed_us
        return tiers.due_review(self.store.rules, from_micros(reviewed) if reviewed else None,
                                now) is not None

    def _hold_refused(self, request: MemberRequest, store: str, terminal: str,
                      found: holds.Read, now: datetime) -> MemberResponse | None:
        """The answer to a hold that :func:`holds.read`'s row decides alone (a blocked card, a
        repeat, an unknown member, HQ's bounds), or None when the points available decide."""
        if found.card_state in (FROZEN, RETIRED):  # HQ's word holds before the till has it
            return self.refuse(request, refusal(f"card.{found.card_state}",
                                                reason=found.card_reason))
        if found.existing is not None:  # asked again after a timeout: the same hold, if it is
            problem = holds.same_request(found.existing, request, store, terminal)
            if problem is not None:
                return self.refuse(request, problem)
            return MemberResponse("hold", True, now, member=request.member,
                                  hold_id=found.existing.id, balance=None)
        if found.member is None:
            return self.refuse(request, refusal("member.unknown"))
        problem = holds.over_bounds(self.trust.holds, self.store.rules, request, found)
        if problem is not None:
            return self.refuse(request, problem)
        return None

    def _hold_granted(self, request: MemberRequest, found: holds.Read, now: datetime,
                      tier: str, balance: int) -> MemberResponse:
        """The hold granted, or refused when the member's ``balance`` (less their pending
        holds, the till's own on them set aside) does not cover it."""
        available = balance - found.pending + found.replaced
        if request.points is None or request.points > available:
            return self.refuse(request, refusal("hold.points", available=max(available, 0)))
        return MemberResponse("hold", True, now, member=request.member, hold_id=request.hold_id,
                              balance=available - request.points, tier=tier)

    def _void(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        answer = self.void_answer(request, store, terminal, MemberHold.get_or_none(
            MemberHold.id == request.hold_id))
        if answer.ok:
            MemberHold.update(state="voided", settled_us=to_micros(answer.hq_time)).where(
                MemberHold.id == request.hold_id).execute()
        return answer

    def void_again(self, request: MemberRequest, store: str, terminal: str,
                   undo: holds.Voided | None) -> MemberResponse:
        """A void :data:`holds.VOID` and :meth:`void_answer` decided apart (a bug, logged by
        terminal.hq.loop_holds), as :meth:`hold_again` takes a hold so disputed: what the
        statement voided (``undo``) is put back as it was, unless something settled the hold
        since, then the full way decides, in one transaction (on a thread of this ledger's)."""
        with pipelined_writing(self.db, self._request_members(request)):
            if undo is not None:
                MemberHold.update(state=undo.before.state,
                                  settled_us=undo.before.settled_us).where(
                    (MemberHold.id == request.hold_id) & (MemberHold.state == "voided")
                    & (MemberHold.settled_us == undo.settled_us)).execute()
            return self._void(request, store, terminal)

    def void_answer(self, request: MemberRequest, store: str, terminal: str,
                    hold: MemberHold | None) -> MemberResponse:
        """The answer to a void of ``hold`` (as read under its member's lock; None: HQ has no
        such hold): granted, the hold is voided (:data:`holds.VOID` voids just these)."""
        if hold is None or (hold.store, hold.terminal) != (store, terminal):
            return self.refuse(request, refusal("hold.unknown"))
        if hold.state == "posted":
            return self.refuse(request, refusal("hold.posted"))
        return MemberResponse("void", True, _now(), hold_id=hold.id)

    def _post(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        # Holds are posted by their sale's event, in the transaction that records the sale.
        return self.refuse(request, refusal("hold.post"))

    def prune_holds(self, now_us: int | None = None) -> int:
        """Delete up to ``PRUNE_HOLDS`` holds settled (posted or voided) more than the trust
        policy's ``[holds] keep_days`` ago, oldest first (migration 26's index): holds are not
        the ledger (a redemption's record is its entries and its applied event), and kept for
        ever they grew by one row a redemption. A pending hold is never deleted. On PostgreSQL a
        hold a writer has locked is skipped (the next round finds it)."""
        now_us = to_micros(_now()) if now_us is None else now_us
        cutoff = now_us - self.trust.holds.keep_days * 86_400_000_000
        old = (MemberHold.select(MemberHold.id)
               .where((MemberHold.state != "pending") & (MemberHold.settled_us < cutoff))
               .order_by(MemberHold.settled_us).limit(PRUNE_HOLDS))
        with member_writing(self.db):
            if isinstance(self.db, PostgresqlDatabase):
                old = old.for_update("FOR UPDATE SKIP LOCKED")
            return MemberHold.delete().where(MemberHold.id.in_(old)).execute()

    def void_expired_holds(self, chunk: int = VOID_CHUNK) -> int:
        """Void the holds that timed out, ``chunk`` a transaction (PostgreSQL; SQLite's in
        one). On PostgreSQL without any member's lock, skipping a hold a writer has locked (a
        sale posting it): the next round finds it if still due.

        In one UPDATE, a backlog's holds timed out together (bench_ingest (c) with
        --c-backlog-holds: 1,808 in a round) were one statement of 20-72 ms holding their rows
        until it committed, and a sale posting one of them waited that long with its batch's
        members locked."""
        now = to_micros(_now())
        due = (MemberHold.state == "pending") & (MemberHold.expires_us <= now)
        if not isinstance(self.db, PostgresqlDatabase):
            with member_writing(self.db):
                return MemberHold.update(state="voided", settled_us=now).where(due).execute()
        voided = 0
        while True:
            with member_writing(self.db):
                some = MemberHold.update(state="voided", settled_us=now).where(
                    MemberHold.id.in_(MemberHold.select(MemberHold.id).where(due).limit(chunk)
                                      .for_update("FOR UPDATE SKIP LOCKED"))).execute()
            voided += some
            if some < chunk:
                return voided

    def keep_hold_statistics(self) -> bool:
        """ANALYZE ``member_hold`` (PostgreSQL) when it changed by more rows since its last
        ANALYZE than that one counted, and by HOLD_STATISTICS_AFTER at least; True if it did.

        A connection keeps its plan of hq_hold_ask's statement (PL/pgSQL, a generic plan from
        the sixth run) until the table's next ANALYZE, and a plan made while the statistics
        said the table was (nearly) empty reads it whole, seven times a hold: under
        bench_ingest (c) with --c-backlog-holds the backlog's 10,000 holds came in 45 s, before
        autovacuum's first visit (once a minute), and a hold took 12-30 ms until then where it
        takes under one (docs/hq.md, session 19 (c)). Once a table is as large as it has been
        analyzed, autovacuum's own threshold (a tenth of it) comes first. SKIP_LOCKED: while
        autovacuum works on the table this round does nothing, and the next one looks again."""
        if not isinstance(self.db, PostgresqlDatabase):
            return False
        row = self.db.execute_sql(HOLD_STATISTICS).fetchone()
        if row is None or row[0] <= max(HOLD_STATISTICS_AFTER, row[1]):
            return False
        self.db.execute_sql("ANALYZE (SKIP_LOCKED) member_hold")
        return True
