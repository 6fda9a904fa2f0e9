"""An ingest batch's writes on PostgreSQL, kept per statement and sent a statement per table.

Each event of a batch wrote its rows one statement a row (savepoint, sale, sale line, entry,
lot, allocation, day count, balance: about 7.5 an event), and each statement cost the collector
about 0.1-0.4 ms of Python in psycopg's pipelined ``execute`` (cProfile, bench_ingest.py
--in-process) where psycopg writing the same rows by ``executemany`` (the database's limit,
figure (a)) pays that once per statement. So inside a batch the store's inserts and its moves
of balances, day counters and lots are kept here, in the order made, and :meth:`Writes.flush`
sends them as one statement per table over arrays of their columns (``unnest``), in an order
the foreign keys and the lot's trigger allow (members, entries, lots, allocations, sales ...),
then the moves: day counters summed per member and day, lot movements summed per lot, each
member's last balance.

A flush happens before anything else reaches the database (any read, any other write: the
database's ``before`` hook, :meth:`HqPostgresDatabase.execute_sql`), so what the batch reads
and what it writes by other means sees every write before it, as if each had run at once; and
at the batch's end, before its meta counters and COMMIT.

An event that fails is rolled back to its savepoint (ChainLedger._apply_one): the rows it added
here are dropped (:meth:`restore`), and rows of earlier events that a flush inside it sent
after the savepoint (so the rollback undid them) are kept to be sent again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from terminal.hq.arrays import array
from terminal.loyalty.store import hotpath

Send = Callable[[str, Sequence[Any]], None]  # a statement sent without waiting for its answer

_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)")
# The store's statements kept until the next flush (inserts, and moves that add up or set).
INSERTS = (hotpath.INSERT_MEMBER, hotpath.INSERT_AUDIT, hotpath.INSERT_SALE,
           hotpath.INSERT_SALE_LINE, hotpath.INSERT_REFUND, hotpath.INSERT_REFUND_LINE,
           hotpath.INSERT_ENTRY, hotpath.INSERT_LOT, hotpath.INSERT_ALLOCATION)
# A hold its sale's redemption posts (holds.post): (settled_us, hold id), kept like the moves.
POST_HOLD = "UPDATE member_hold SET state = 'posted', settled_us = ? WHERE id = ?"
KEPT = frozenset({*INSERTS, hotpath.COUNT_DAY, hotpath.MOVE_LOT, hotpath.SAVE_BALANCE, POST_HOLD})
# Tables in the order their rows go: each after the tables its foreign keys name, lots after
# entries (migration 14's trigger reads the lot's earning entry as the lot is inserted).
ORDER = ("member", "member_home", "audit", "sale", "sale_line", "refund", "refund_line",
         "ledger_entry", "lot", "allocation", "applied_event")
TYPES = ("SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
         "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = ANY(%s) AND c.relkind = 'r' "
         "AND pg_table_is_visible(c.oid) AND a.attnum > 0 AND NOT a.attisdropped")
_DAY_HEAD = hotpath.COUNT_DAY.split(" VALUES ")[0]
_DAY_TAIL = hotpath.COUNT_DAY[hotpath.COUNT_DAY.index(" ON CONFLICT"):]
_DAY_COLUMNS = ("member_id", "day", "earned", "redeemed", "offline_redeemed")

Key = tuple[str, tuple[str, ...]]  # (table, columns) of an insert; ("", (statement,)) a move
# The kept writes PostgreSQL may plan by its own setting (a generic plan, made once, for each
# statement and for the foreign-key checks and trigger statements it runs), not for each
# statement's parameters (BatchStatements.plan_reads): the entries and lots (their checks and
# the lot's trigger read ``member`` and ``ledger_entry`` by key), the applied events and the
# counter, lot and balance moves. The others keep a plan for their parameters: a generic plan
# made while a table was nearly empty goes on scanning it as it grows, until the server
# analyzes it again: the sale lines' and refunds' checks of ``sale`` (0.3 ms a check by 8,000
# sales into a fresh chain in bench_ingest.py, against 0.01 ms planned each time) and the
# holds posted (``member_hold``, where a chain's holds come and go).
SERVER_PLANNED = frozenset({"ledger_entry", "lot", "allocation", "applied_event",
                            hotpath.COUNT_DAY, hotpath.MOVE_LOT, hotpath.SAVE_BALANCE})
# Since session 16 the sales, their lines and the refunds are planned by the server's setting
# too, with sequential scans off while they run (BatchStatements.plan_reads): their checks of
# ``sale`` and ``refund`` get a generic plan that finds the row by its key whatever the table's
# size when it was made, instead of a new plan every check (0.06 ms each at load 11 in
# bench_ingest.py, docs/hq.md "session 16 (b1)").
INDEX_PLANNED = frozenset({"sale", "sale_line", "refund", "refund_line"})
# Called before each statement with its table (an insert) or its SQL (a move): how it is planned
# (SERVER_PLANNED, INDEX_PLANNED, else for its parameters).
Plan = Callable[[str], None]


def _insert_key(sql: str) -> Key:
    found = _INSERT.fullmatch(sql)
    if found is None:
        raise ValueError(f"not a plain INSERT: {sql}")
    table, columns = found.groups()
    return table, tuple(column.strip() for column in columns.split(","))


_KEYS: dict[str, Key] = {sql: _insert_key(sql) for sql in INSERTS}
# The moves, sent after the inserts (a lot is moved once it is in).
_MOVES = (hotpath.COUNT_DAY, hotpath.MOVE_LOT, hotpath.SAVE_BALANCE, POST_HOLD)
_KEYS.update({sql: ("", (sql,)) for sql in _MOVES})


class Writes:
    """A batch's kept writes (see the module's doc): rows per statement, and how many of each
    list a flush has sent."""

    def __init__(self, send: Send, types: dict[str, dict[str, str]]) -> None:
        self._send = send
        self._types = types  # table -> column -> SQL type (format_type), read once (TYPES)
        self._rows: dict[Key, list[Sequence[Any]]] = {}
        self._sent: dict[Key, int] = {}
        # Undo: the key of each row kept, in order, and ``_sent`` as each flush found it, so an
        # event's mark is two lengths. Until session 18 each event's mark was a dict of every
        # list's length and sent count (a dozen entries): callgrind of ChainLedger.apply on
        # 1,000 of bench_ingest's events, 1.041 G instructions with it, 1.011 G without.
        self._journal: list[Key] = []
        self._before_flushes: list[dict[Key, int]] = []
        self.statements = 0  # sent by flushes

    def add(self, sql: str, params: Sequence[Any]) -> None:
        """Keep one of the store's statements (one in :data:`KEPT`)."""
        self._keep(_KEYS[sql], params)

    def add_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Keep rows for ``table`` (HQ's own inserts: applied events, member homes)."""
        if table not in ORDER:
            raise ValueError(f"no place for {table} among the kept tables")
        key = (table, tuple(columns))
        for row in rows:
            self._keep(key, row)

    def _keep(self, key: Key, params: Sequence[Any]) -> None:
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = []
            self._sent[key] = 0
        rows.append(params)
        self._journal.append(key)

    @property
    def pending(self) -> bool:
        return any(len(rows) > self._sent[key] for key, rows in self._rows.items())

    def mark(self) -> tuple[int, int]:
        """Where the kept rows stand: how many were kept, how many flushes went."""
        return len(self._journal), len(self._before_flushes)

    def restore(self, mark: tuple[int, int]) -> None:
        """The event after ``mark`` was rolled back to its savepoint: drop its rows, and send
        again the earlier ones sent since (the rollback undid them)."""
        kept, flushes = mark
        for key in reversed(self._journal[kept:]):
            self._rows[key].pop()
        del self._journal[kept:]
        if flushes < len(self._before_flushes):  # sent since the mark: each list's sent then
            then = self._before_flushes[flushes]
            for key, rows in self._rows.items():
                self._sent[key] = min(self._sent[key], then.get(key, 0), len(rows))

    def flush(self, plan: Plan | None = None) -> None:
        """Send every row kept and not sent yet: inserts table by table (:data:`ORDER`), then
        the day counters, lot movements and balances; ``plan`` told before each statement
        which it is (:data:`Plan`)."""
        pending = {key: rows[self._sent[key]:] for key, rows in self._rows.items()
                   if len(rows) > self._sent[key]}
        if not pending:
            return
        self._before_flushes.append(dict(self._sent))
        for key in self._rows:
            self._sent[key] = len(self._rows[key])
        inserts = sorted((key for key in pending if key[0]), key=lambda key: ORDER.index(key[0]))
        for table, columns in inserts:
            if plan is not None:
                plan(table)
            self._insert(table, columns, pending[(table, columns)])
        for sql in _MOVES:
            rows = pending.get(("", (sql,)))
            if rows:
                if plan is not None:
                    plan(sql)
                {hotpath.COUNT_DAY: self._count_days, hotpath.MOVE_LOT: self._move_lots,
                 hotpath.SAVE_BALANCE: self._balances, POST_HOLD: self._post_holds}[sql](rows)

    def _arrays(self, table: str, columns: Sequence[str]) -> str:
        types = self._types[table]
        # Binary (%b): psycopg's text dump of an array searches each element for characters to
        # quote (3.9 us a string against 0.7 us in binary, measured here).
        return ", ".join(f"%b::{types[column]}[]" for column in columns)

    def _go(self, sql: str, params: Sequence[Any]) -> None:
        self.statements += 1
        self._send(sql, params)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[Sequence[Any]]) -> None:
        names = ", ".join(columns)
        if len(rows) == 1:
            marks = ", ".join(["%s"] * len(columns))
            self._go(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows[0])
            return
        # unnest yields the arrays' elements in order: the rows go in as they were made.
        types = self._types[table]
        self._go(f"INSERT INTO {table} ({names}) SELECT * FROM unnest("
                 f"{self._arrays(table, columns)})",
                 [array(column, types[name])
                  for name, column in zip(columns, zip(*rows, strict=True), strict=True)])

    def _count_days(self, rows: list[Sequence[Any]]) -> None:
        """One row per member and day (an upsert may not touch a row twice), the counts summed:
        the upsert adds them, so their sum is what the rows one by one would add."""
        summed: dict[tuple[str, str], list[int]] = {}
        for member, day, *counts in rows:
            total = summed.setdefault((member, day), [0, 0, 0])
            for n, count in enumerate(counts):
                total[n] += int(count)
        keys = sorted(summed)
        columns = [[member for member, _ in keys], [day for _, day in keys],
                   *([summed[key][n] for key in keys] for n in range(3))]
        types = self._types["member_day"]
        self._go(f"{_DAY_HEAD} SELECT * FROM unnest({self._arrays('member_day', _DAY_COLUMNS)})"
                 f"{_DAY_TAIL}", [array(column, types[name])
                                  for name, column in zip(_DAY_COLUMNS, columns, strict=True)])

    def _move_lots(self, rows: list[Sequence[Any]]) -> None:
        """Each lot's movements summed (remaining = remaining + delta adds up)."""
        moved: dict[str, int] = {}
        for delta, lot_id in rows:
            moved[lot_id] = moved.get(lot_id, 0) + int(delta)
        self._update("lot", "remaining = t.remaining + v.remaining", ("remaining",),
                     {lot_id: (delta,) for lot_id, delta in moved.items()})

    def _balances(self, rows: list[Sequence[Any]]) -> None:
        """Each member's last balance and debt (the statement sets them whole)."""
        last: dict[str, tuple[Any, Any]] = {}
        for balance, debt, member in rows:
            last[member] = (balance, debt)
        self._update("member", "balance = v.balance, debt = v.debt", ("balance", "debt"), last)

    def _post_holds(self, rows: list[Sequence[Any]]) -> None:
        """The holds posted, each at its (last) time: one statement, where each was three
        (the event's savepoint opened for it, the update, the savepoint released)."""
        posted: dict[str, tuple[Any]] = {}
        for settled_us, hold_id in rows:
            posted[hold_id] = (settled_us,)
        self._update("member_hold", "state = 'posted', settled_us = v.settled_us",
                     ("settled_us",), posted)

    def _update(self, table: str, sets: str, columns: tuple[str, ...],
                values: dict[str, Sequence[Any]]) -> None:
        """One UPDATE of ``table`` (as ``t``) over arrays: ``sets`` from ``v``, whose
        ``columns`` hold each id's ``values``, ids in order. The ids again as "= ANY": the
        rows found by the primary key, not by a join's scan (batch.py)."""
        ids = sorted(values)
        types = self._types[table]
        names = (*columns, "id")
        self._go(f"UPDATE {table} t SET {sets} FROM unnest("
                 f"{', '.join(f'%b::{types[name]}[]' for name in names)}) AS v({', '.join(names)}) "
                 f"WHERE t.id = v.id AND t.id = ANY(%b::{types['id']}[])",
                 [*(array([values[key][n] for key in ids], types[column])
                    for n, column in enumerate(columns)), *[array(ids, types["id"])] * 2])


def column_types(rows: Sequence[Sequence[Any]]) -> dict[str, dict[str, str]]:
    """TYPES' rows as table -> column -> type."""
    types: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        types.setdefault(table, {})[column] = kind
    return types


TABLES = sorted({*ORDER, "member_day", "member_hold"})
