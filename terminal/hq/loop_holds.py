"""A till's holds and voids answered on the collector's event loop (PostgreSQL; issue 11 (c)).

Until session 13 a hold went from the loop to one of the ledger's holding threads
(``ChainLedger.request_thread``) and back, each hand-off a wait for a CPU under a backlog
(bench/hold_stages: 19 and 16 ms at p99). Here the request's own task sends it through
psycopg's ``AsyncConnection``, no thread in between: one statement in autocommit (migration
32's function, :data:`holds.ASK_AT_ONCE`) takes the member's advisory lock (the lock ingest
batches take) and then reads, decides and writes (:data:`holds.ASK`): one send, one wait, one
pass through the loop (:func:`_ask`; in session 13 the lock and ASK went out in a pipeline,
seven passes). The answer is decided from the row read by the
ledger's own code (:meth:`ChainLedger.judge_ask`, the very function the thread's way runs); a
hold it cannot settle (a tier review due, or the two deciding apart) goes the full way on a
holding thread, as before (:meth:`ChainLedger.hold_again`). A void is two waits (three on a
thread): its hold's member, then that member's lock and :data:`holds.VOID` in one
transaction; :meth:`ChainLedger.void_answer` decides from the row (the two apart, a bug: the
statement's void undone and the full way on a holding thread, :meth:`ChainLedger.void_again`).

A hold waits for its member's lock (a batch of that member) on a connection of its own, from a
small pool (psycopg_pool): the other members' holds go on on the others. A connection found
broken is dropped by the pool and replaced; the request is sent once more on another, and
refused with the error if that fails too (the till shows it and does not redeem: "HQ refused
the hold: HQ's database failed: ..."), not left to time out. SQLite (one shop) keeps the
holding threads, and so does ``posterm-hq collect --holds threads``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from terminal.hq import holds
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import HqPostgresDatabase, configure_connection, member_locks
from terminal.loyalty.clock import to_micros
from terminal.protocol.hq_refusals import refusal
from terminal.protocol.messages import MemberRequest, MemberResponse

log = logging.getLogger(__name__)

# Connections the pool keeps (each one hold or void at a time; a hold waiting for a batch's
# lock keeps its own), and how many it may open past those while all are busy.
CONNECTIONS, MAX_CONNECTIONS = 4, 8
APPLICATION = "posterm-hq-holds-loop"  # pg_stat_activity's name (bench_ingest samples holds%)
_ASK_AT_ONCE, _VOID, _HOLD_MEMBER = (statement.replace("?", "%s") for statement in (
    holds.ASK_AT_ONCE, holds.VOID, holds.HOLD_MEMBER))


class LoopHolds:
    """Holds and voids of ``ledger`` (on PostgreSQL) answered on the running event loop."""

    def __init__(self, ledger: ChainLedger, connections: int = CONNECTIONS,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        if not isinstance(ledger.db, HqPostgresDatabase):
            raise TypeError("holds on the event loop are for HQ's PostgreSQL")
        self.ledger = ledger
        self.name = ledger.db.database
        # Made, not opened: psycopg_pool opens its connections on the loop (open()).
        self.pool = AsyncConnectionPool(
            kwargs={**ledger.db.connection_kwargs(), "autocommit": True,
                    "application_name": APPLICATION},
            min_size=connections, max_size=max(connections, max_connections), open=False,
            configure=self._configure, name="hq-holds-loop")

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        configure_connection(conn, self.name)

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def close(self) -> None:
        await self.pool.close()

    async def answer(self, request: MemberRequest, store: str,
                     terminal: str) -> MemberResponse:
        """The answer to a hold or void of till ``store``/``terminal``."""
        malformed = self.ledger.malformed(request)
        if malformed is not None:
            return malformed
        way = {"hold": self._hold, "void": self._void}[request.op]
        try:
            try:
                return await way(request, store, terminal)
            except psycopg.OperationalError as exc:  # the connection, or the server
                log.warning("%s %s: %s; sent again on another connection", request.op,
                            request.hold_id, exc)
            return await way(request, store, terminal)  # once more, on another connection
        except psycopg.Error as problem:
            log.error("%s %s not answered: %s", request.op, request.hold_id, problem)
            return self.ledger.refuse(request, refusal(
                "hq.database", problem=f"{type(problem).__name__}: {problem}"))

    async def _hold(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        ledger, now = self.ledger, datetime.now(UTC)
        async with self.pool.connection() as conn:
            row = await _ask(conn, (holds.lock_key(request),
                                    *ledger.ask_parameters(request, store, terminal, now)))
        found, inserted = holds.asked(row, request)
        judged = ledger.judge_ask(request, store, terminal, found, inserted, now)
        if isinstance(judged, MemberResponse):
            return judged
        # The full way, on a holding thread: its reads are Peewee's (a tier review due).
        return await ledger.request_thread(request).run(ledger.hold_again, request, store,
                                                        terminal, judged)

    async def _void(self, request: MemberRequest, store: str, terminal: str) -> MemberResponse:
        ledger, now = self.ledger, datetime.now(UTC)
        async with self.pool.connection() as conn:
            member = await (await conn.execute(_HOLD_MEMBER, (request.hold_id,))).fetchone()
            if member is None:
                return ledger.void_answer(request, store, terminal, None)
            cursor = await _locked(conn, [member[0]], _VOID,
                                   (request.hold_id, to_micros(now), store, terminal))
            row = await cursor.fetchone()
        hold, voided = holds.voided(row, request)
        answer = ledger.void_answer(request, store, terminal, hold)
        if answer.ok == voided:
            return answer
        # A bug: the statement and the ledger apart. As a hold so disputed (hold_again): what
        # the statement did is undone and the full way decides, on a holding thread, so a till
        # told "refused" finds its hold as before it asked.
        log.error("void %s: the statement %s it, the ledger %s; taken the full way",
                  request.hold_id, "voided" if voided else "kept",
                  "voids it" if answer.ok else "refuses")
        return await ledger.request_thread(request).run(
            ledger.void_again, request, store, terminal,
            holds.Voided(hold, to_micros(now)) if voided and hold is not None else None)


async def _ask(conn: psycopg.AsyncConnection[Any], parameters: tuple[Any, ...]) -> Any:
    """:data:`holds.ASK_AT_ONCE`'s row: the member's lock and :data:`holds.ASK` in one
    statement (migration 33's function) on a connection in autocommit, its own transaction:
    one send and one wait, no pipeline (which passed through the loop seven times a hold)."""
    return await (await conn.execute(_ASK_AT_ONCE, parameters)).fetchone()


async def _locked(conn: psycopg.AsyncConnection[Any], members: Iterable[str], statement: str,
                  parameters: tuple[Any, ...]) -> psycopg.AsyncCursor[Any]:
    """``statement`` after the ``members``' advisory locks, in one transaction and one wait for
    the server; its cursor, read after (a void's: a hold's lock and statement are one,
    :func:`_ask`).

    Pipeline mode on a connection in autocommit: the statements sent before the pipeline's
    sync run in one implicit transaction, committed at the sync (the locks held until then,
    each statement with a snapshot of its own), as PostgreSQL's extended protocol runs them.
    No BEGIN and COMMIT: psycopg's async pipeline hands each command it sends to the event
    loop once (and the COMMIT syncs, then the pipeline's exit syncs again); with them a hold
    went through the loop 17 times, without them 7 (a probe of 400 holds, 4 at a time: p50
    2.7-5.1 ms against 5.2-9.0 on an idle machine, 8.7-12.2 against 12.3-14.6 beside three
    CPU-bound processes)."""
    locks = member_locks(members)
    async with conn.pipeline():
        if locks is not None:
            await conn.execute(*locks)
        return await conn.execute(statement, parameters)
