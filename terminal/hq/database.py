"""HQ's database: SQLite (one shop) or PostgreSQL (a chain), with the loyalty store's schema.

``--db`` is a file path or ``sqlite:///path`` for SQLite, ``postgresql://user@host:port/name``
for PostgreSQL, reached through Peewee and psycopg 3.

On PostgreSQL every value travels as a server-side bound parameter: no SQL text is ever built
with a value in it. The client encoding is UTF8 and checked at connect, with the database's own
(a Chinese name must store, and read back, as it was sent). Round trips, not SQL, were what ingest
spent its time on (about 0.2 ms each on the 2-core bench machine, a dozen per event), so a batch
runs in psycopg's *pipeline mode* (:func:`pipelined`): statements whose result nobody reads are
sent without waiting, and the server answers them all with the next statement that is read, or
the COMMIT. An error in one of them surfaces there, in the same transaction, and fails the batch.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from peewee import (
    Database,
    Model,
    PostgresqlDatabase,
    SqliteDatabase,
    __exception_wrapper__,
    _savepoint,
)
from playhouse.db_url import parse

from terminal.hq import arrays, migrations
from terminal.hq.arrays import array
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.database import open_database

# HQ's member operations (the console's) take this transaction-scoped lock, so they run one at a
# time (their own sequence, member_op.seq, is a max + 1); ingest and member requests never take
# it: they lock the members they write (member_writing).
_PG_LOCK = 0x706F7374  # "post"
# A member's writers take (this, member_key(card hash)): see member_writing.
_PG_MEMBER_LOCKS = 0x6D656D62  # "memb"
# Schema changes take this session-level lock (see open_hq_database).
_PG_SCHEMA_LOCK = 0x706F7363  # "posc"


# The chain sequence on PostgreSQL: each write transaction takes a block of this many numbers
# (migration 13). Numbers a transaction does not use, or rolls back, are never handed out:
# the sequence has gaps, and is in the order the transactions began, not committed.
SEQ_BLOCK = 1_000_000
# The store's statements as HQ's PostgreSQL runs them (hotpath.Statements takes a database's
# own text for a statement): the sequence from a block, not from a row every writer waits for,
# and the sequence and trusted-time floor in ``meta`` moved only upwards.
STATEMENTS = {
    hotpath.META_COUNTERS: (
        "SELECT key, value FROM meta WHERE key IN ('trusted_floor_us', 'undated_lots') "
        f"UNION ALL SELECT 'seq', (nextval('hq_seq_block') * {SEQ_BLOCK})::text"),
    hotpath.SET_META: (
        "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
        "SET value = excluded.value WHERE meta.key NOT IN ('seq', 'trusted_floor_us') "
        "OR COALESCE(NULLIF(meta.value, ''), '0')::bigint < excluded.value::bigint"),
}

# Statements that change no row a batch keeps (a rolled-back savepoint forgets them itself).
_READS_AND_SAVEPOINTS = frozenset({"SELECT", "SAVEPOINT", "RELEASE"})
# Statements before which a batch need not send the writes it kept (terminal.hq.buffered): its
# events' savepoints (a rolled-back event's kept rows are dropped, not sent).
_SAVEPOINTS = frozenset({"SAVEPOINT", "RELEASE", "ROLLBACK"})


class EncodingError(ValueError):
    """The PostgreSQL database or connection does not speak UTF8."""


class HqPostgresDatabase(PostgresqlDatabase):
    """PostgreSQL through psycopg 3, UTF8 checked; batches can run pipelined (:func:`pipelined`).

    A connection belongs to the thread that opened it (Peewee's per-thread state), so the
    collector's ingest thread and its member-request thread never share one.
    """

    statements = STATEMENTS  # see hotpath.Statements

    def init(self, database: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefer_psycopg3", True)  # psycopg 3 even if psycopg2 is installed
        kwargs.setdefault("encoding", "UTF8")  # sent as client_encoding at connect
        super().init(database, **kwargs)
        self._thread = _ThreadState()

    def _connect(self) -> Any:
        conn = super()._connect()
        try:
            configure_connection(conn, self.database)
            # pg_stat_activity names each connection by its thread (a collector's ingest,
            # "posterm-hq-ledger", and member requests, "posterm-hq-requests").
            conn.execute("SELECT set_config('application_name', %s, false)",
                         (threading.current_thread().name[:63],))
        except EncodingError:
            conn.close()
            raise
        return conn

    def connection_kwargs(self) -> dict[str, Any]:
        """What Peewee's psycopg 3 adapter connects with (the database's name or URL, its
        connect parameters, UTF8): for connections of psycopg's own beside Peewee's
        (terminal.hq.loop_holds), configured by :func:`configure_connection`."""
        named = "conninfo" if self.database.startswith("postgresql://") else "dbname"
        return {**self.connect_params, named: self.database, "client_encoding": "UTF8"}

    @property
    def before(self) -> Callable[[], None] | None:
        """Called (on this thread) before any statement but a savepoint's runs through
        execute_sql: a batch sends the writes it kept (terminal.hq.buffered) first."""
        return self._thread.before

    @before.setter
    def before(self, hook: Callable[[], None] | None) -> None:
        self._thread.before = hook

    @property
    def on_write(self) -> Callable[[str], None] | None:
        """Called (on this thread) with the statement's text before any statement but a read or
        a savepoint runs through execute_sql (not for those sent by :meth:`send`): what a batch
        keeps of the rows may be stale after (terminal.hq.kept)."""
        return self._thread.on_write

    @on_write.setter
    def on_write(self, hook: Callable[[str], None] | None) -> None:
        self._thread.on_write = hook

    def atomic(self, *args: Any, **kwargs: Any) -> Any:
        flat_from = self._thread.flat_from
        if flat_from is not None and self.transaction_depth() >= flat_from:
            return nullcontext()  # inside a unit (see :meth:`unit`)
        return super().atomic(*args, **kwargs)

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One savepoint for a unit of work that fails or succeeds whole (an event): the
        transactions its code opens inside (the store's, per operation) nest flat in it, as
        nobody inside catches a failure and goes on. Each SAVEPOINT and RELEASE is a statement
        psycopg sends and waits to send (a poll and a send), and they were a third of an
        anonymous sale's statements.

        In a batch that keeps its writes (:attr:`before` set, terminal.hq.buffered) the
        savepoint is opened only once the unit sends something that writes
        (:meth:`open_savepoint`), and released or rolled back only then: a member sale whose
        reads the batch answers from memory and whose writes it keeps sends nothing, and the
        batch drops its kept rows itself when the unit fails (BatchStatements.restore)."""
        state = self._thread
        if state.before is not None:
            yield from self._lazy_unit()
            return
        with super().atomic():
            self._thread.flat_from = self.transaction_depth()
            try:
                yield
            finally:
                self._thread.flat_from = None

    def _lazy_unit(self) -> Iterator[None]:
        state = self._thread
        state.flat_from = self.transaction_depth()
        pending = state.savepoint = _LazySavepoint(f"hq{state.flat_from}u")
        try:
            yield
        except BaseException:
            if pending.opened:
                self.execute_sql(f"ROLLBACK TO SAVEPOINT {pending.name}")
            raise
        else:
            if pending.opened:
                self.execute_sql(f"RELEASE SAVEPOINT {pending.name}")
        finally:
            state.flat_from, state.savepoint = None, None

    def open_savepoint(self) -> None:
        """Open the unit's savepoint if it is waiting for a write (see :meth:`unit`): called
        before anything that writes is sent."""
        pending = self._thread.savepoint
        if pending is not None and not pending.opened:
            pending.opened = True
            super().execute_sql(f"SAVEPOINT {pending.name}")

    def savepoint(self) -> _savepoint:
        # Peewee names each savepoint by a uuid4, so every SAVEPOINT and RELEASE is new SQL text:
        # psycopg converts each afresh and they push the store's statements out of its query
        # cache (a third of a collector's time, cProfile). Savepoints nest strictly, so naming
        # each by its depth is unique among those open (PostgreSQL's newest of a name wins).
        return _savepoint(self, f"hq{self.transaction_depth()}")

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Run the block in psycopg's pipeline mode (on this thread's connection)."""
        with self.connection().pipeline():
            yield

    def send(self, sql: str, params: Sequence[Any] = (), *, writes: bool = True) -> None:
        """Execute ``sql`` without the :attr:`on_write` hook: the store's own writes, whose
        effect on the rows a batch keeps it accounts for itself. Pipelined, nothing waits.
        ``writes`` False: a statement that writes no row (a setting) opens no savepoint."""
        if writes:
            self.open_savepoint()
        conn, state = self.connection(), self._thread
        if state.sender is None or state.sender.connection is not conn:
            state.sender = conn.cursor()  # one per connection: nobody reads what it answers
        with __exception_wrapper__:
            state.sender.execute(sql, params)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        state = self._thread
        if state.before is not None or state.on_write is not None:
            verb = sql.lstrip()[:9].upper().split(" ", 1)[0]
            if state.before is not None and verb not in _SAVEPOINTS:
                state.before()
                if verb != "SELECT":
                    self.open_savepoint()
            if state.on_write is not None and verb not in _READS_AND_SAVEPOINTS:
                state.on_write(sql)
        return super().execute_sql(sql, params)

    @property
    def in_pipeline(self) -> bool:
        conn = self._state.conn
        return conn is not None and conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


@dataclass
class _LazySavepoint:
    """A unit's savepoint (:meth:`HqPostgresDatabase.unit`): its name, and whether it has been
    opened (only once the unit sends something that writes)."""

    name: str
    opened: bool = False


class _ThreadState(threading.local):
    """What each thread's use of the database sets for itself (a collector's ingest and member
    request threads share the database object, each on its own connection)."""

    on_write: Callable[[str], None] | None = None
    before: Callable[[], None] | None = None  # see HqPostgresDatabase.before
    savepoint: _LazySavepoint | None = None  # the unit's savepoint, opened at its first write
    flat_from: int | None = None  # transactions this deep or deeper are flat (unit())
    sender: Any = None  # the cursor send() uses on this thread's connection


def configure_connection(conn: Any, name: str) -> None:
    """What every connection of HQ's has, Peewee's or psycopg's own (sync or async): lists
    dumped by terminal.hq.arrays, and UTF8 checked (:func:`check_utf8`)."""
    arrays.register(conn.adapters)
    check_utf8(conn, name)


def check_utf8(conn: Any, name: str) -> None:
    """Refuse a connection whose client or database encoding is not UTF8, naming both."""
    client = conn.info.parameter_status("client_encoding")
    server = conn.info.parameter_status("server_encoding")
    if client != "UTF8" or server != "UTF8":
        raise EncodingError(
            f"PostgreSQL database {name}: client encoding {client}, database encoding "
            f"{server}; HQ needs UTF8 for both (create the database with ENCODING 'UTF8')")


def retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL undoing a transaction that may simply run again: a
    deadlock it broke or a serialisation failure (two writers' locks crossed). Named by
    class: psycopg 3 makes both OperationalErrors, not subclasses of its TransactionRollback
    (SQLSTATE 40000), which this once tested and so never matched; other class-40 states
    (40002, 40003: an integrity violation, a completion unknown) are not run again."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        found = todo.pop()
        if found is None or id(found) in seen:
            continue
        seen.add(id(found))
        if isinstance(found, psycopg.errors.DeadlockDetected
                      | psycopg.errors.SerializationFailure):
            return True
        todo += [found.__cause__, found.__context__,
                 *(arg for arg in found.args if isinstance(arg, BaseException))]
    return False


def unit(db: Database) -> AbstractContextManager[Any]:
    """:meth:`HqPostgresDatabase.unit`, or a plain savepoint (SQLite's cost nothing to send)."""
    return db.unit() if isinstance(db, HqPostgresDatabase) else db.atomic()


def pipelined(db: Database) -> AbstractContextManager[None]:
    """:meth:`HqPostgresDatabase.pipelined`, or nothing on a database without round trips."""
    return db.pipelined() if isinstance(db, HqPostgresDatabase) else nullcontext()


@contextmanager
def pipelined_writing(db: Database, card_hashes: Iterable[str] = ()) -> Iterator[None]:
    """:func:`member_writing` inside :func:`pipelined`: the BEGIN goes out with the block's
    first statements and the COMMIT with its last writes, instead of a wait each. After a
    failure the transaction is rolled back once the pipeline is left: inside it, PostgreSQL
    skips everything sent after the error up to the pipeline's sync, the ROLLBACK too."""
    try:
        with pipelined(db), member_writing(db, card_hashes):
            yield
    except BaseException:
        if isinstance(db, HqPostgresDatabase) and not db.is_closed():
            conn = db.connection()
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                conn.rollback()
        raise


def open_hq_database(url: str, *, migrate: bool = True) -> Database:
    """Open HQ's database at ``url`` and bring its schema to this software's version
    (:mod:`terminal.hq.migrations`). With ``migrate=False`` (a collector, a report) a schema of
    another version is refused, naming both; an empty database is still initialised, so
    collectors can start on a new one. On PostgreSQL schema changes are made under a session
    advisory lock: CREATE TABLE IF NOT EXISTS is not safe against itself (two collectors starting
    on an empty database both pass the check and one fails on pg_type's unique index)."""
    if url.startswith(("postgresql://", "postgres://")):
        db: Database = HqPostgresDatabase(**parse(url))
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_PG_SCHEMA_LOCK,))
        try:
            _schema(db, migrate)
        except BaseException:
            db.close()
            raise
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (_PG_SCHEMA_LOCK,))
        return db
    path = url.removeprefix("sqlite:///")
    with _sqlite_schema_lock(path):
        db = open_database(path)
        try:
            _schema(db, migrate)
        except BaseException:
            db.close()
            raise
    return db


@contextmanager
def _sqlite_schema_lock(path: str) -> Iterator[None]:
    """SQLite's counterpart of the schema advisory lock: an exclusive ``flock`` on a file beside
    the database while it is opened, upgraded or checked. Without it a process opening a new
    database could find another half-way through the migrations (a version stored, not the
    latest) and refuse it as older than its own (a collector's member-request process, forked
    as the collector starts, did)."""
    if path in ("", ":memory:") or path.startswith("file:"):
        yield
        return
    lock_path = Path(f"{path}.schema-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def _schema(db: Database, migrate: bool) -> None:
    if migrate or migrations.stored_version(db) is None:
        migrations.upgrade(db)
    else:
        migrations.check(db)


def append_only(db: Database, models: Sequence[type[Model]]) -> None:
    """Triggers that refuse UPDATE and DELETE (and on PostgreSQL TRUNCATE) of ``models``'
    tables: their rows are a record (idempotent; models bound by the caller)."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(
            "CREATE OR REPLACE FUNCTION posterm_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; "
            "END $$")
    for model in models:
        table = model._meta.table_name
        if isinstance(db, PostgresqlDatabase):
            db.execute_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            db.execute_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON "
                f"{table} FOR EACH STATEMENT EXECUTE FUNCTION posterm_append_only()")
            continue
        for action in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def snapshot(db: Database) -> AbstractContextManager[object]:
    """A read-only transaction whose every query sees the same moment of the ledger (a report's
    sums agree with each other while collectors write; on a PostgreSQL hot standby too)."""
    if isinstance(db, PostgresqlDatabase):
        return db.atomic(isolation_level="REPEATABLE READ")
    return db.atomic()  # SQLite (WAL): a read transaction is one snapshot


REPORT_WORK_MEM = "64MB"


def tune_for_reports(db: Database) -> None:
    """Inside a report's transaction on PostgreSQL, for that transaction only: no JIT (a
    report's statements are short, and compiling one took longer than running it: 3.0 s of a
    7.3 s near-tier statement at a million members) and ``work_mem`` 64 MB for its groupings (a
    month's member days grouped by member spilled 14 MB to disk at the default 4 MB: 0.71 s)."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)",
                       (REPORT_WORK_MEM,))


CUSTOM_PLANS = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
# Back to the server's own setting for the rest of the transaction (or up to CUSTOM_PLANS again).
SERVER_PLANS = "SET LOCAL plan_cache_mode TO DEFAULT"


def plan_for_parameters(db: Database) -> None:
    """Inside a transaction on PostgreSQL, for that transaction only: every statement planned
    for the parameters it is run with, never by a cached generic plan. psycopg prepares a
    statement on the server from its fifth run, and PostgreSQL then keeps a generic plan made
    for the tables as they were: an ingest batch's reads over arrays (kept.py) planned while
    ``sale`` and ``refund`` were nearly empty went on scanning them as they grew (the refunds'
    read took 49 ms a batch, 12.5 s of the server's 17.2 s for 4,000 events of the bench's mix;
    with custom plans 0.7 ms: bench_ingest.py --parts ab with pg_stat_statements, docs/hq.md).
    The statements stay prepared: only the planning is done again, for the arrays at hand.
    Sent without waiting in pipeline mode."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(CUSTOM_PLANS)


def writing(db: Database) -> AbstractContextManager[object]:
    """A write transaction one at a time: IMMEDIATE on SQLite, under the chain-wide advisory
    lock on PostgreSQL (HQ's member operations; ingest and member requests use
    :func:`member_writing`)."""
    if isinstance(db, SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return _LockedAtomic(db, chain=True)


def member_writing(db: Database, card_hashes: Iterable[str] = ()) -> AbstractContextManager[object]:
    """A write transaction that waits only for the writers of the same members: on PostgreSQL
    it takes each member's transaction-scoped advisory lock (:func:`lock_members`) and not the
    chain-wide one, so a till's hold never queues behind an ingest batch of other members. On
    SQLite (one shop) there is one writer: IMMEDIATE, as :func:`writing`."""
    if isinstance(db, SqliteDatabase):
        return db.atomic("IMMEDIATE")
    return _LockedAtomic(db, members=card_hashes)


def member_key(card_hash: str) -> int:
    """The advisory lock key (a signed 32-bit integer) of a member's card hash: the same in
    every process, as it must be for collectors on several hosts."""
    digest = hashlib.blake2b(card_hash.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_members(db: Database, card_hashes: Iterable[str]) -> None:
    """Take the members' advisory locks in this transaction (PostgreSQL; nothing on SQLite,
    whose writer is alone). In key order, so two writers locking overlapping members never
    wait for each other in a cycle."""
    if not isinstance(db, PostgresqlDatabase):
        return
    locks = member_locks(card_hashes)
    if locks is not None:
        db.execute_sql(*locks)


def member_locks(card_hashes: Iterable[str]) -> tuple[str, tuple[int, list[int]]] | None:
    """The statement and parameters that take the members' advisory locks in key order
    (:func:`lock_members`; PostgreSQL), or None for no member: for a connection of psycopg's
    own too (terminal.hq.loop_holds)."""
    keys = sorted({member_key(card_hash) for card_hash in card_hashes})
    if not keys:
        return None
    # unnest yields in array order, and the locks are taken in it
    return ("SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%s::int[]) k",
            (_PG_MEMBER_LOCKS, keys))


def lock_free_members(db: Database, keys: Iterable[str]) -> set[str]:
    """Take those of the keys' advisory locks no other transaction holds, without waiting;
    return the keys whose lock another holds (PostgreSQL; none on SQLite, one writer)."""
    return lock_free_members_later(db, keys)()


def lock_free_members_later(db: Database, keys: Iterable[str]) -> Callable[[], set[str]]:
    """:func:`lock_free_members` sent now, its answer read when called: in pipeline mode
    the reads sent after it are answered in the same wait for the server."""
    named = sorted(set(keys))
    if not isinstance(db, PostgresqlDatabase) or not named:
        return set
    cursor = db.execute_sql(
        "SELECT key FROM unnest(%b::int[], %b::text[]) AS t(k, key) "
        "WHERE NOT pg_try_advisory_xact_lock(%s, k)",
        (array([member_key(key) for key in named], "integer"), array(named, "text"),
         _PG_MEMBER_LOCKS))
    return lambda: {key for (key,) in cursor.fetchall()}


class _LockedAtomic:
    def __init__(self, db: Database, chain: bool = False, members: Iterable[str] = ()) -> None:
        self.db, self.chain, self.members = db, chain, members
        self.atomic = db.atomic()

    def __enter__(self) -> object:
        entered = self.atomic.__enter__()
        try:
            if self.chain:
                self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
            lock_members(self.db, self.members)
        except BaseException as exc:
            self.atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return entered

    def __exit__(self, *exc: object) -> None:
        self.atomic.__exit__(*exc)
