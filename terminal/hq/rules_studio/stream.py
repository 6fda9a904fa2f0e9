"""A backtest read from HQ's database a span of members at a time, so that what it holds does not
grow with the window or the chain: each span's history is read (its members' opening state and
their events, a few statements a span), replayed under both rule sets, reduced to a
:class:`~terminal.hq.rules_studio.backtest.Tally` and dropped. Members are independent (a
member's events touch only its own lots, spend, tier and daily counts), so replaying the chain
span by span gives the figures of replaying it whole (a test compares the two).

The spans cut the members in id order, ``chunk`` members each (the first also takes the sales
without a member, which count only as skipped). On PostgreSQL the spans are shared out among
``workers`` processes, each with its own connection; every one of them reads in the snapshot the
first connection exported (``pg_export_snapshot``), so all read the same moment of a ledger the
collectors keep writing. On SQLite (one shop) one process reads every span in one DEFERRED read
transaction. The spans' bounds and the conditions on them are the database's own comparisons of
the ids, so the spans cut the members exactly whatever its collation.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Database, PostgresqlDatabase
from psycopg import sql

from terminal.hq.database import open_hq_database, snapshot
from terminal.hq.entry_stores import EntryStores
from terminal.hq.models import HQ_MODELS
from terminal.hq.rules_studio import parallel
from terminal.hq.rules_studio.backtest import Progress, Tally, progress_ticks, report, tally
from terminal.hq.rules_studio.history import Span, Window, load_part, recorded, window
from terminal.hq.rules_studio.parallel import replay_pair
from terminal.hq.rules_studio.replay import Tick
from terminal.loyalty.clock import from_micros
from terminal.loyalty.ledger import ADJUST, BONUS
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS as STORE_MODELS
from terminal.loyalty.store.models import Exchange, LedgerEntry, Member, Refund, Sale

CHUNK = 20_000  # members a span: its history is what a process holds at once
MODELS = [*STORE_MODELS, *HQ_MODELS]


def spans(chunk: int) -> list[Span]:
    """The members cut in id order, ``chunk`` a span (models bound); the first span also has
    the member-less sales, the last runs to the end (members registered meanwhile)."""
    bounds: list[str] = []
    for number, (member_id,) in enumerate(Member.select(Member.id).order_by(Member.id)
                                          .tuples().iterator()):
        if number and number % chunk == 0:
            bounds.append(member_id)
    if not bounds:
        return [Span()]
    lows: list[str | None] = [None, *bounds]
    highs: list[str | None] = [*bounds, None]
    return [Span(low, high, nobody=number == 0)
            for number, (low, high) in enumerate(zip(lows, highs, strict=True))]


def window_events(first_seq: int) -> int:
    """How many events the window has (for the progress), counted, not read."""
    return sum(int(query.count()) for query in (
        Sale.select().where(Sale.seq >= first_seq),
        Refund.select().where(Refund.seq >= first_seq),
        Exchange.select().where(Exchange.seq >= first_seq),
        LedgerEntry.select().where((LedgerEntry.seq >= first_seq)
                                   & LedgerEntry.kind.in_([BONUS, ADJUST])
                                   & LedgerEntry.sale_id.is_null())))


@dataclass(frozen=True)
class Reader:
    """What a process needs to read and replay spans: the same in every worker."""

    url: str
    fixed: Window
    zone: ZoneInfo
    in_force: Rules
    candidate: Rules
    exported: str | None  # the PostgreSQL snapshot every reader imports


class _Reading:
    """A process's connection and the entries' stores, opened once (in the process)."""

    def __init__(self, reader: Reader, db: Database | None = None) -> None:
        self.reader = reader
        self.own = db is None
        self.db = db if db is not None else open_hq_database(reader.url, migrate=False)
        self.stores: EntryStores | None = None

    @contextmanager
    def bound(self) -> Iterator[None]:
        with self.db.bind_ctx(MODELS):
            if self.reader.exported is None:
                yield
                return
            with snapshot(self.db):
                self.db.execute_sql(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(
                    sql.Literal(self.reader.exported)).as_string(self.db.connection()))
                yield

    def replay(self, span: Span, tick: Tick | None) -> Tally:
        reader = self.reader
        with self.bound():
            if self.stores is None:
                self.stores = EntryStores(reader.fixed.first_seq)
            history = load_part(reader.fixed, reader.zone, span, self.stores)
        old, new = replay_pair(history, reader.in_force, reader.candidate, tick)
        return tally(old, new, history.homes, reader.in_force, reader.candidate,
                     len(history.events))


_reading: _Reading | None = None  # a worker's


def _start_worker(reader: Reader, counter: Any) -> None:
    global _reading
    parallel._share(counter)
    _reading = _Reading(reader)


def _replay_span(span: Span) -> Tally:
    assert _reading is not None
    return _reading.replay(span, parallel._count)


def _one_moment(db: Database) -> AbstractContextManager[object]:
    """The run's read transaction: REPEATABLE READ on PostgreSQL (its snapshot exported to the
    workers); on SQLite a DEFERRED one (HQ's SQLite begins IMMEDIATE by default: a backtest
    holding the write lock made the console's job fail to record its progress, 'database is
    locked'), which in WAL mode reads one moment and lets writers on."""
    if isinstance(db, PostgresqlDatabase):
        return snapshot(db)
    return db.atomic("DEFERRED")


def run(url: str, in_force: Rules, candidate: Rules, days: int, until: datetime | None = None,
        progress: Progress = lambda step, done, total: None, workers: int | None = None,
        chunk: int = CHUNK, min_events: int = parallel.MIN_PARALLEL_EVENTS) -> dict[str, Any]:
    """The backtest of the last ``days`` days before ``until`` at ``url`` (see the module).
    A window of fewer than ``min_events`` events stays in this process (starting a worker
    costs more)."""
    progress("reading", 0, 0)
    db = open_hq_database(url, migrate=False)
    try:
        postgres = isinstance(db, PostgresqlDatabase)
        with db.bind_ctx(MODELS), _one_moment(db):
            fixed = window(days, until, max(in_force.tier_window_months,
                                            candidate.tier_window_months))
            figures = recorded(fixed)
            cut = spans(chunk)
            total = window_events(fixed.first_seq)
            exported = (db.execute_sql("SELECT pg_export_snapshot()").fetchone()[0]
                        if postgres else None)
            reader = Reader(url, fixed, in_force.zone, in_force, candidate, exported)
            tick = progress_ticks(progress, total)
            workers = parallel.default_workers() if workers is None else workers
            if not postgres or workers <= 1 or len(cut) == 1 or total < min_events:
                # SQLite, or one process: this connection, this transaction, span by span
                here = _Reading(Reader(url, fixed, in_force.zone, in_force, candidate, None),
                                db)
                tallies = [here.replay(span, tick) for span in cut]
            else:
                tallies = _in_workers(reader, cut, workers, tick)
    finally:
        db.close()
    whole = tallies[0]
    for part in tallies[1:]:
        whole.add(part)
    return report(whole, from_micros(fixed.start_us), from_micros(fixed.until_us),
                  fixed.first_seq, figures, in_force, candidate)


def _in_workers(reader: Reader, cut: list[Span], workers: int, tick: Tick) -> list[Tally]:
    """The spans replayed by ``workers`` processes, a span a task (the pool hands the next
    span to whichever is free), the tallies in span order."""
    context, _ = parallel._context()
    counter = context.Value("q", 0)
    with ProcessPoolExecutor(min(workers, len(cut)), mp_context=context,
                             initializer=_start_worker, initargs=(reader, counter)) as pool:
        futures = [pool.submit(_replay_span, span) for span in cut]
        return parallel._wait(futures, counter, tick)
