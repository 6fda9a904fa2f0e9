"""The store's statements for HQ's batches: per batch, what the store does per event.

:meth:`ChainLedger.apply` replays hundreds of events in one transaction under the writers' lock
(database.writing), so inside a batch HQ is the only writer and may keep in memory what the
terminal's store reads and writes around every event:

* the meta counters (sequence, trusted-time floor, undated lots) are read once per batch and
  written once at its end, instead of read, upserted twice and re-read for the floor per event;
* whether a sale id is already recorded is answered from one query for the batch's sales and
  the sales the batch itself inserted;
* on PostgreSQL the store's inserts and updates, whose results it never reads, are kept and
  sent a statement per table before the next statement that reaches the database
  (:mod:`terminal.hq.buffered`), without waiting (:meth:`HqPostgresDatabase.send`, in pipeline
  mode): they are answered with the next read or the COMMIT;
* on PostgreSQL the batch's members, their day counters, open lots and tier-window spend are
  read in a few queries at its start (:meth:`BatchStatements.prefetch`, :mod:`terminal.hq.kept`)
  and moved by the store's own writes; a write of the ORM's (a registration, a tier change)
  forgets what it may change, which is read again when asked.

An event that fails is rolled back to its savepoint; :meth:`mark` and :meth:`restore` roll these
caches back with it. Everything else runs as :class:`hotpath.Statements` runs it. Bulk inserts of
the expiry sweep go by COPY on PostgreSQL (outside a pipeline, where COPY cannot run).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from peewee import Database, __exception_wrapper__

from terminal.hq import buffered
from terminal.hq.arrays import array
from terminal.hq.database import (
    CUSTOM_PLANS,
    SEQ_BLOCK,
    SERVER_PLANS,
    HqPostgresDatabase,
    lock_members,
    plan_for_parameters,
)
from terminal.hq.kept import READS, Kept
from terminal.loyalty.store import hotpath

COUNTERS = ("seq", "trusted_floor_us", "undated_lots")  # what hotpath.META_COUNTERS reads

# Writes whose result (row count, cursor) the store never looks at: sent without waiting.
DEFERRABLE = frozenset({
    hotpath.INSERT_SALE, hotpath.INSERT_SALE_LINE, hotpath.INSERT_ENTRY, hotpath.INSERT_LOT,
    hotpath.INSERT_ALLOCATION, hotpath.MOVE_LOT, hotpath.COUNT_DAY, hotpath.SAVE_BALANCE,
    hotpath.EMPTY_LOT, hotpath.TAKE_FROM_BALANCE, hotpath.SET_META, hotpath.INSERT_MEMBER,
    hotpath.INSERT_AUDIT, hotpath.INSERT_REFUND, hotpath.INSERT_REFUND_LINE,
})
ROWS_PER_INSERT = 100  # rows per multi-row INSERT: bound parameters stay few
COPY_FROM = 1_000  # from this many rows on, an insert goes by COPY where it can
_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)")
# The sweep's next chunk on PostgreSQL: DUE_LOTS's order read off the lot's own copy of its
# earning entry's number and the index in that order (migration 14), not sorted anew each chunk.
DUE_LOTS_BY_INDEX = (
    "SELECT l.id, l.member_id, l.remaining FROM lot l WHERE l.remaining > 0 "
    "AND l.earned_seq IS NOT NULL AND l.expires_us <= ? ORDER BY l.expires_us, l.earned_seq "
    "LIMIT ?"
)
# The sweep's chunk of due lots, of the members it has locked only (see BatchStatements.run),
# in the same order and without the join either: with the join PostgreSQL hashed the whole
# ledger_entry table for every chunk (a seq scan of it: 1.12 s of a 8.2 s sweep of 100,000 lots,
# and ten times the entries at chain scale; bench/sweep_probe.py).
DUE_LOTS_OF_MEMBERS = DUE_LOTS_BY_INDEX.replace(
    "WHERE l.remaining > 0", "WHERE l.member_id = ANY(?) AND l.remaining > 0")
CARD_HASHES = "SELECT card_hash FROM member WHERE id = ANY(?)"
# On PostgreSQL, writes of many rows as one statement over arrays of their parameters (the
# sweep's thousand lots and members a chunk: a statement each instead of one a row), sent binary
# (%b): psycopg's text dump of a list searches every string for characters to quote (a third of
# the sweep's own CPU in cProfile at 100,000 lots, with the sweep's other arrays).
SET_BASED = {
    hotpath.EMPTY_LOT: "UPDATE lot SET remaining = 0 WHERE id = ANY(%b::text[])",
    # The members' ids again as "= ANY": the rows found by the primary key, not by scanning
    # the member table for the join (its estimate of unnest is 100 rows). A chunk names each
    # member once (Accounts._record_expiries sums per member).
    hotpath.TAKE_FROM_BALANCE: (
        "UPDATE member m SET balance = m.balance - v.points FROM unnest(%b::int[], %b::text[]) "
        "AS v(points, id) WHERE m.id = v.id AND m.id = ANY(%b::text[])"),
}
# The counters but the sequence, which a ledger on PostgreSQL takes from its block.
META_FLAGS = "SELECT key, value FROM meta WHERE key IN ('trusted_floor_us', 'undated_lots')"
RESERVE = SEQ_BLOCK // 10  # with fewer numbers left in its block, a transaction takes a new one
# How the statements a batch sends now are planned (BatchStatements.plan_reads): as the server
# plans them, every one for its parameters, or not known (an event's savepoint rolled back).
SERVER, CUSTOM, UNKNOWN = "server", "custom", "unknown"
# ... or as the server plans them with sequential scans off (buffered.INDEX_PLANNED).
INDEXED = "indexed"
SEQSCAN_OFF = "SET LOCAL enable_seqscan TO off"
SEQSCAN_BACK = "SET LOCAL enable_seqscan TO DEFAULT"
# What BatchStatements.run answers before anything else (see _in_memory).
_IN_MEMORY = frozenset({hotpath.META_COUNTERS, hotpath.GET_META, hotpath.SET_META,
                        hotpath.SALE_EXISTS, hotpath.DUE_LOTS})


class Rows:
    """What a cursor answers, for a statement answered from memory (the batch's, and the
    bonus grant's: terminal.hq.member_ops.bulk)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


_NOTHING = Rows([])


class Mark:
    """The caches as they were before an event (see :meth:`BatchStatements.mark`)."""

    __slots__ = ("dirty", "entries", "meta", "sales", "writes")

    def __init__(self, meta: dict[str, str | None], dirty: set[str], sales: int, entries: int,
                 writes: tuple[int, int] | None) -> None:
        self.meta, self.dirty, self.sales, self.writes = meta, dirty, sales, writes
        self.entries = entries


class BatchStatements(hotpath.Statements):
    META_IN_ONE_STATEMENT = False  # run() keeps the counters in memory by seeing each SET_META

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.pipelines = isinstance(db, HqPostgresDatabase)
        self._meta: dict[str, str | None] | None = None  # None: not in a batch
        self._dirty: set[str] = set()
        self._asked: set[str] = set()  # sale ids whose existence is known here
        self._sales: set[str] = set()  # of those, the ones recorded
        self._inserted: list[str] = []  # sales inserted in this batch, in order
        # (seq, points) of the ledger entries this batch inserted, in order: what each event
        # moved, without reading the entries back (ChainLedger._count_points).
        self.entries: list[tuple[int, int]] = []
        # PostgreSQL, during a batch: its members' rows (terminal.hq.kept).
        self.kept = Kept(lambda sql, params: hotpath.Statements.run(self, sql, params))
        # PostgreSQL: [next number, last number] of the block of the chain sequence this ledger
        # hands out (database.SEQ_BLOCK): its transactions go on where the last one stopped,
        # so one collector numbers as SQLite's one writer does, and collectors never collide.
        self._block: list[int] | None = None
        # PostgreSQL, during a batch: the writes kept to be sent a statement per table
        # (terminal.hq.buffered); the column types its statements cast to, read once.
        self.writes: buffered.Writes | None = None
        self._types: dict[str, dict[str, str]] | None = None
        # PostgreSQL, during a batch's transaction: how its statements are planned now (SERVER,
        # CUSTOM, UNKNOWN; "" when plan_reads was not asked: nothing is switched).
        self._plans = ""

    # -- the batch -----------------------------------------------------------------------------

    @contextmanager
    def batch(self, sale_ids: Iterable[str] = ()) -> Iterator[None]:
        """Keep the counters and the given sale ids' existence in memory until the end, then
        write the counters that changed (inside the caller's transaction)."""
        asked = set(sale_ids)
        recorded = self.existing_later("sale", asked)  # answered with the counters' read
        meta: dict[str, str | None] = dict.fromkeys(COUNTERS)
        meta.update(self._counters())
        self._asked, self._sales = asked, recorded()
        self._inserted, self._dirty, self._meta, self.entries = [], set(), meta, []
        if self.pipelines:
            if self._types is None:
                self._types = buffered.column_types(super().run(
                    buffered.TYPES, (buffered.TABLES,)).fetchall())
            self.writes = buffered.Writes(self._send, self._types)
            self.db.on_write = self.kept.written  # type: ignore[attr-defined]
            self.db.before = self._before  # type: ignore[attr-defined]
        try:
            yield
            meta = self._meta  # restore() replaces it
            changed = [(key, meta[key]) for key in sorted(self._dirty)]
            self.flush()
        finally:
            self._meta, self._asked, self._sales, self._inserted = None, set(), set(), []
            self.entries, self._plans = [], ""
            self._forget()
            if self.pipelines:
                self.db.on_write = None  # type: ignore[attr-defined]
                self.db.before = None  # type: ignore[attr-defined]
                self.writes = None
        for row in changed:
            self._write(hotpath.SET_META, row)

    @property
    def seq(self) -> int:
        """The chain ledger's sequence counter as this batch has moved it."""
        if self._meta is None:
            raise RuntimeError("the sequence is kept in memory only during a batch")
        return int(self._meta.get("seq") or 0)

    def mark(self) -> Mark:
        assert self._meta is not None
        return Mark(dict(self._meta), set(self._dirty), len(self._inserted), len(self.entries),
                    self.writes.mark() if self.writes is not None else None)

    def restore(self, mark: Mark) -> None:
        """Undo the caches' changes since ``mark``: its event was rolled back."""
        self._meta, self._dirty = mark.meta, mark.dirty
        if self.writes is not None and mark.writes is not None:
            self.writes.restore(mark.writes)
        for sale_id in self._inserted[mark.sales:]:
            self._sales.discard(sale_id)
        del self._inserted[mark.sales:]
        del self.entries[mark.entries:]
        if self._plans:  # a setting sent inside the event's savepoint went back with it
            self._plans = UNKNOWN
        self._forget()

    def _counters(self) -> list[tuple[str, str]]:
        """The meta counters: on PostgreSQL the sequence where this ledger's block goes on."""
        if not self.pipelines:
            return super().run(hotpath.META_COUNTERS).fetchall()
        block = self._block
        if block is None or block[1] - block[0] < RESERVE:
            rows = super().run(hotpath.META_COUNTERS).fetchall()  # takes a block
            start = int(dict(rows)["seq"])
            self._block = [start + 1, start + SEQ_BLOCK]
            return rows
        return [*super().run(META_FLAGS).fetchall(), ("seq", str(block[0] - 1))]

    def reserve(self, count: int) -> int:
        """The first of ``count`` consecutive numbers of the chain sequence, handed out from this
        ledger's block (PostgreSQL; a new block taken when this one has fewer left): HQ's
        parallel sweep numbers each chunk's entries before a worker writes them."""
        block = self._block
        if block is None or block[1] - block[0] + 1 < count:
            start = int(dict(super().run(hotpath.META_COUNTERS).fetchall())["seq"])
            block = self._block = [start + 1, start + SEQ_BLOCK]
        first = block[0]
        block[0] += count
        return first

    def plan_reads(self) -> None:
        """At the start of a batch's transaction, before its reads: every statement planned for
        the parameters it is run with (database.plan_for_parameters: the reads over arrays
        of the batch's members, sales and refunds), but most of the batch's kept writes,
        sent under the server's own setting (buffered.SERVER_PLANNED; PostgreSQL, in a
        :meth:`batch`).

        Planned for their parameters, those writes gained nothing (inserts from arrays, updates
        by primary key) and cost the server a new plan every time for each statement and for
        each foreign-key check and trigger statement they ran (PostgreSQL plans those by the
        same setting): of 2.7 s of planning for 8,000 events (0.1 s for the same rows written
        by psycopg alone), 1.6 s went to those, 0.8 s now (pg_stat_statements, bench_ingest.py
        --parts ab, docs/hq.md "Writes planned by the server")."""
        plan_for_parameters(self.db)
        if self.pipelines:
            self._plans = CUSTOM

    def _plan(self, how: str) -> None:
        """Switch how the statements sent next are planned (see :meth:`plan_reads`): the plan
        cache's mode (for the parameters, CUSTOM; else the server's) and, for INDEXED, the
        sequential scans, each sent only when it changes."""
        was = self._plans
        if not was or was == how:
            return
        if was == UNKNOWN or (was == CUSTOM) != (how == CUSTOM):
            self._send_setting(CUSTOM_PLANS if how == CUSTOM else SERVER_PLANS)
        if was == UNKNOWN or (was == INDEXED) != (how == INDEXED):
            self._send_setting(SEQSCAN_OFF if how == INDEXED else SEQSCAN_BACK)
        self._plans = how

    def _send_setting(self, sql: str) -> None:
        db = self.db
        assert isinstance(db, HqPostgresDatabase)
        db.send(sql, writes=False)

    def flush(self) -> None:
        """Send the batch's kept writes (terminal.hq.buffered), before anything else runs."""
        if self.writes is not None:
            self.writes.flush(self._plan_write)

    def _plan_write(self, key: str) -> None:
        self._plan(SERVER if key in buffered.SERVER_PLANNED
                   else INDEXED if key in buffered.INDEX_PLANNED else CUSTOM)

    def _before(self) -> None:
        """Before any other statement of a batch (HqPostgresDatabase.before): the kept writes
        sent, and what follows planned for its parameters again (:meth:`plan_reads`)."""
        self.flush()
        self._plan(CUSTOM)

    def _forget(self) -> None:
        """Forget the rows kept: read them again when asked."""
        self.kept.forget()

    def prefetch(self, card_hashes: Iterable[str], days: Iterable[str], since: int | None,
                 refunds: Sequence[str] = (), refund_ids: Sequence[str] = ()) -> None:
        """Inside :meth:`batch` on PostgreSQL: read the members with these card hashes, their
        counters for ``days``, their open lots and their sales since ``since`` (the earliest
        tier window's start) in a few queries, for the batch's events to read from memory; with
        ``refunds`` (sale ids) and ``refund_ids``, what refunding those sales reads."""
        if self.pipelines and self._meta is not None:
            self.kept.load(card_hashes, days, since, refunds, refund_ids)

    def prefetch_later(self, card_hashes: Iterable[str], days: Iterable[str],
                       since: int | None, refunds: Sequence[str] = (),
                       refund_ids: Sequence[str] = ()) -> Callable[[], None]:
        """:meth:`prefetch` asked now, before :meth:`batch` (PostgreSQL: sent in the pipeline,
        answered in the wait for the counters), its rows kept when called inside it."""
        if not self.pipelines:
            return lambda: None
        return self.kept.ask(card_hashes, days, since, refunds, refund_ids)

    # -- queries for the batch as a whole ------------------------------------------------------

    def existing(self, table: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are primary keys of ``table``: one query (per 500 on SQLite)."""
        return self.existing_later(table, ids)()

    def existing_later(self, table: str, ids: Iterable[str]) -> Callable[[], set[str]]:
        """:meth:`existing` asked now (PostgreSQL: sent, in pipeline mode without waiting),
        its answer read when called."""
        wanted, found = sorted(ids), set()
        if self.pipelines:  # one array parameter, one statement for the server to prepare
            cursor = self.db.execute_sql(f"SELECT id FROM {table} WHERE id = ANY(%b::text[])",
                                         (array(wanted, "text"),))
            return lambda: {row for (row,) in cursor.fetchall()}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join([self.db.param] * len(chunk))
            found.update(row for (row,) in self.db.execute_sql(
                f"SELECT id FROM {table} WHERE id IN ({marks})", chunk).fetchall())
        return lambda: found

    def write(self, sql: str, params: Sequence[Any]) -> None:
        """Run a write whose result nobody reads (no ``?``: the database's own parameter marks):
        sent without waiting on PostgreSQL, at once on SQLite. Nothing kept is moved by it."""
        if self.pipelines:
            self._send(sql, params)
        else:
            self.db.execute_sql(sql, params)

    def post_hold(self, hold_id: str, at_us: int) -> None:
        """Settle a hold as posted by its sale's redemption, in the sale's transaction: kept
        with the batch's writes on PostgreSQL (terminal.hq.buffered; sent alone it was three
        statements: the event's savepoint opened for it, the update, the savepoint released),
        run at once on SQLite."""
        if self.writes is not None:
            self.writes.add(buffered.POST_HOLD, (at_us, hold_id))
        else:
            self.write(self._sql(buffered.POST_HOLD), (at_us, hold_id))

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows``: without waiting on PostgreSQL (ROWS_PER_INSERT rows a statement),
        at once on SQLite."""
        if not rows:
            return
        if self.writes is not None:  # sent with the batch's other kept writes
            self.writes.add_rows(table, columns, rows)
            return
        names = ", ".join(columns)
        one = "(" + ", ".join([self.db.param] * len(columns)) + ")"
        if not self.pipelines:
            self.db.cursor().executemany(f"INSERT INTO {table} ({names}) VALUES {one}",
                                         [tuple(row) for row in rows])
            return
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start:start + ROWS_PER_INSERT]
            self._send(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}",
                       [value for row in chunk for value in row])

    # -- the store's statements ----------------------------------------------------------------

    def _send(self, sql: str, params: Sequence[Any]) -> None:
        db = self.db
        assert isinstance(db, HqPostgresDatabase)
        db.send(sql, params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._meta is None or sql in _IN_MEMORY:
            answered = self._in_memory(sql, params)
            if answered is not None:
                return answered
        # The store's dozen statements a sale in a batch: each found in a table or two (a
        # chain of some thirty comparisons ran for each).
        if self.pipelines:
            if sql in READS:
                rows = self.kept.answer(sql, params)
                if rows is not None:
                    return Rows(rows)
            else:
                self.kept.track(sql, params)
        if sql == hotpath.INSERT_ENTRY:
            self.entries.append((params[1], params[4]))
        elif sql == hotpath.INSERT_SALE:
            self._asked.add(params[0])
            self._sales.add(params[0])
            self._inserted.append(params[0])
        return self._write(sql, params)

    def _in_memory(self, sql: str, params: Sequence[Any]) -> Any:
        """:meth:`run` outside a batch, and the statements a batch answers from its meta
        counters and sale ids (:data:`_IN_MEMORY`); None for a sale id it was not asked."""
        meta = self._meta
        if self.pipelines and meta is None and sql == hotpath.META_COUNTERS:
            return Rows(self._counters())
        if sql == hotpath.DUE_LOTS and self.pipelines:
            return self._due_locked(params)
        if meta is None:
            return self._write(sql, params)
        if sql == hotpath.META_COUNTERS:
            return Rows([(key, meta[key]) for key in COUNTERS if meta[key] is not None])
        if sql == hotpath.GET_META:
            key = params[0]
            if key not in meta:
                row = super().run(sql, params).fetchone()
                meta[key] = row[0] if row else None
            return Rows([(meta[key],)]) if meta[key] is not None else _NOTHING
        if sql == hotpath.SET_META:
            meta[params[0]] = params[1]
            self._dirty.add(params[0])
            return _NOTHING
        if sql == hotpath.SALE_EXISTS and params[0] in self._asked:
            return Rows([(1,)]) if params[0] in self._sales else _NOTHING
        return None

    def _due_locked(self, params: Sequence[Any]) -> Any:
        """The sweep's next chunk of due lots on PostgreSQL, with their members locked first
        (database.lock_members, in key order) as every writer of a member does: the chunk is
        read, its members locked, and read again among those members only (a lot a member's
        writer expired meanwhile is gone; when nobody wrote, the same chunk)."""
        due = super().run(DUE_LOTS_BY_INDEX, params).fetchall()
        members = sorted({member_id for _, member_id, _ in due})
        if not members:
            return Rows(due)
        lock_members(self.db, [card for (card,) in super().run(CARD_HASHES, (members,))])
        return super().run(DUE_LOTS_OF_MEMBERS, (members, *params))

    def _write_set(self, sql: str, params: Sequence[Any]) -> None:
        self.flush()
        if self.db.in_pipeline:  # type: ignore[attr-defined]
            self._send(sql, params)
        else:
            self.db.execute_sql(sql, params)

    def _write(self, sql: str, params: Sequence[Any]) -> Any:
        """Run ``sql``; on PostgreSQL a write whose result is not read is sent without waiting
        for its answer (in a pipeline, any later read or the COMMIT takes it along)."""
        if self.pipelines and sql == hotpath.SET_META and params[0] == "seq" \
                and self._block is not None:  # the numbers up to it are used
            self._block[0] = max(self._block[0], int(params[1]) + 1)
        if self.writes is not None and sql in buffered.KEPT:
            self.writes.add(sql, params)
            return _NOTHING
        if self.pipelines and sql in DEFERRABLE:
            self.flush()
            self._send(self._sql(sql), params)
            return _NOTHING
        return super().run(sql, params)

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per row: on PostgreSQL a large insert goes by COPY (outside a
        pipeline) and the rest by psycopg's executemany, itself pipelined."""
        rows = list(rows)
        if self._meta is not None and sql == hotpath.INSERT_ENTRY:
            self.entries += [(row[1], row[4]) for row in rows]
        if self.pipelines and self._meta is not None:
            for row in rows:
                self.kept.track(sql, row)
        if self.writes is not None and sql in buffered.KEPT:
            for row in rows:
                self.writes.add(sql, row)
            return
        self.flush()
        db = self.db
        if isinstance(db, HqPostgresDatabase):
            db.open_savepoint()  # the cursor's executemany and COPY below write
        whole = SET_BASED.get(sql) if self.pipelines and len(rows) > 1 else None
        if whole is not None:  # one statement for the rows (their order changes nothing)
            columns = [list(column) for column in zip(*rows, strict=True)]
            self._write_set(whole, columns + columns[-1:] * (whole.count("%b") - len(columns)))
            return
        insert = _INSERT.fullmatch(sql)
        if insert is None or len(rows) < COPY_FROM or not isinstance(db, HqPostgresDatabase) \
                or db.in_pipeline:
            super().many(sql, rows)
            return
        table, columns = insert.groups()
        with __exception_wrapper__, db.cursor().copy(
                f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
