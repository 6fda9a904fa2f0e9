"""HQ's expiry sweep on PostgreSQL with several connections at once.

The sweep's time is the server's (at 100,000 lots 11-17 s of 14-22 s: the entries and
allocations written, each allocation's two foreign-key checks, the lots emptied, the balances),
and one connection keeps one backend, so one core, busy. Here the chunks go to ``workers``
threads, each on a connection of its own, while this thread reads the next chunks:

* the chunks are the serial sweep's: the due lots in the order every copy of the ledger gives
  them (expiry, then the earning entry's number), ``chunk`` at a time, read one after another by
  that order's keys (not by ``remaining > 0`` again, which waits for the chunk before to commit);
* each chunk's entries are numbered before it is handed out: one number a member, in the order
  of the member's first lot due in the chunk, the chunk's numbers after the last chunk's (from
  this ledger's block of the chain sequence, ``BatchStatements.reserve``). So the entries, their
  numbers and their order are the serial sweep's and SQLite's (``tests/hq/test_ingest_batches``),
  whichever worker commits first;
* a worker locks the chunk's members (in key order, as every member writer does), reads the
  chunk's lots again among them (a lot a collector emptied meanwhile is left out: its number is
  a gap, as the chain sequence allows) and writes as the serial sweep does
  (:func:`terminal.loyalty.store.accounts.record_expiries`), one transaction a chunk. A member
  in two chunks is written by both, one after the other (its lock), each taking its own lots'
  points from the balance;
* the trusted-time floor and the re-dating of undated lots happen first, in a transaction of
  their own, and the ``seq`` counter moves past the last number at the end.

A sweep killed midway keeps the chunks committed (not necessarily the first ones): the next run
expires the rest.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from peewee import Database

from terminal.hq.batch import CARD_HASHES, BatchStatements
from terminal.hq.database import member_writing
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.operations import ExpiryResult
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.accounts import record_expiries
from terminal.loyalty.store.binding import bound_call
from terminal.loyalty.store.writer import Writer

# The next chunk of due lots after the last one's keys, in the serial sweep's order (the index
# lot_open_by_expiry_seq, migration 14).
DUE_AFTER = (
    "SELECT l.id, l.member_id, l.remaining, l.expires_us, l.earned_seq FROM lot l "
    "WHERE l.remaining > 0 AND l.earned_seq IS NOT NULL AND l.expires_us <= %s "
    "AND (l.expires_us, l.earned_seq) > (%s, %s) ORDER BY l.expires_us, l.earned_seq LIMIT %s")
# A chunk's lots again, once its members are locked: those still due, in the same order. Its
# arrays go binary (%b), as batch.SET_BASED's do.
DUE_OF_CHUNK = (
    "SELECT l.id, l.member_id, l.remaining FROM lot l WHERE l.id = ANY(%b) AND l.remaining > 0 "
    "AND l.earned_seq IS NOT NULL AND l.expires_us <= %s ORDER BY l.expires_us, l.earned_seq")
_LOWEST = -(2**63)
_DONE = None


class _Chunk:
    __slots__ = ("first_seq", "lots", "members")

    def __init__(self, lots: list[str], members: list[str], first_seq: int) -> None:
        self.lots, self.members, self.first_seq = lots, members, first_seq


def expire(db: Database, sql: BatchStatements, writing: Callable[[Moment], Any],
           moment: Moment, chunk: int, workers: int) -> ExpiryResult:
    """Expire every lot due at the moment's expiry time with ``workers`` connections (see the
    module's doc). ``sql`` is the ledger's own statements (its block of the sequence),
    ``writing`` its write transaction (the floor, undated lots, the ``seq`` counter)."""
    as_of = moment.expiry_as_of
    if as_of is None:
        return ExpiryResult(0, 0, 0, None, "the clock is not trusted and no trusted time "
                                           "has been seen: nothing expires")
    as_of_us = to_micros(as_of)
    with member_writing(db), writing(moment):
        pass  # the trusted-time floor; lots earned on an untrusted clock dated now
    todo: queue.Queue[_Chunk | None] = queue.Queue(maxsize=workers)
    totals = {"lots": 0, "points": 0}
    members: set[str] = set()
    failed: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            while (item := todo.get()) is not _DONE:
                if failed:
                    continue
                try:
                    lots, points, names = bound_call(db, _expire_chunk, db, item, moment,
                                                     as_of_us)
                except BaseException as exc:  # raised again by the sweep, once all stop
                    failed.append(exc)
                    continue
                with lock:
                    totals["lots"] += lots
                    totals["points"] += points
                    members.update(names)
        finally:
            db.close()  # this thread's connection

    threads = [threading.Thread(target=work, name=f"hq-sweep-{n}", daemon=True)
               for n in range(workers)]
    for thread in threads:
        thread.start()
    last = (_LOWEST, _LOWEST)
    number = None
    try:
        while not failed:
            due = db.execute_sql(DUE_AFTER, (as_of_us, *last, chunk)).fetchall()
            if not due:
                break
            last = (due[-1][3], due[-1][4])
            named = list(dict.fromkeys(member for _, member, *_ in due))
            first = sql.reserve(len(named))
            number = first + len(named) - 1
            todo.put(_Chunk([lot for lot, *_ in due], sorted(named), first))
    finally:
        for _ in threads:
            todo.put(_DONE)
        for thread in threads:
            thread.join()
    if failed:
        raise failed[0]
    if number is not None:
        with member_writing(db):
            sql.set_meta([("seq", str(number))])  # the upsert keeps the greater
    return ExpiryResult(totals["lots"], totals["points"], len(members), as_of)


def _expire_chunk(db: Database, item: _Chunk, moment: Moment,
                  as_of_us: int) -> tuple[int, int, set[str]]:
    """One chunk in one transaction on this thread's connection: its members locked, its lots
    read again among them, their entries numbered from the chunk's first number."""
    sql = BatchStatements(db)  # this thread's: outside a batch it keeps nothing
    cards = [card for (card,) in db.execute_sql(CARD_HASHES.replace("?", "%b"),
                                                (item.members,)).fetchall()]
    with member_writing(db, cards):
        due = db.execute_sql(DUE_OF_CHUNK, (item.lots, as_of_us)).fetchall()
        if not due:
            return 0, 0, set()
        w = Writer(moment, item.first_seq - 1, 0)
        taken = record_expiries(sql, w, due)
        sql.many(hotpath.TAKE_FROM_BALANCE, sorted(taken, key=lambda row: row[1]))
    return len(due), sum(remaining for *_, remaining in due), {m for _, m, _ in due}

