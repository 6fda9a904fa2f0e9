"""A hold's statements taken alone (issue 11 (c), session 14): migration 33's one statement
against the statements it replaced, on an event loop and on a thread, idle and beside CPU-bound
processes. No broker, no ingest: what the hold itself costs the process that answers it.

Ways, each ``--holds`` holds of a member chosen at random (and each voided after, untimed), at
most ``--in-flight`` at once:
  loop-pipeline   session 13's loop way: the member's lock and ``holds.ASK`` in psycopg's async
                  pipeline, one implicit transaction (seven passes through the loop a hold)
  loop-function   session 14's: ``SELECT * FROM hq_hold_ask(...)`` in autocommit (one)
  thread-pipeline session 12's thread way: BEGIN, the lock, ASK and COMMIT pipelined (Peewee)
  thread-function session 14's: the one statement through Peewee's connection in autocommit
Each way's p50 / p99 (ms) and the probe process's CPU a hold (ms), idle and with ``--busy`` CPU
-bound processes in this process's session beside it (they share its scheduling group).

Run: .venv/bin/python bench/hold_probe.py [--holds 400] [--in-flight 4] [--busy 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ingest import card_hash, new_database

from terminal.hq import holds, loop_holds
from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database, pipelined_writing
from terminal.hq.loop_holds import LoopHolds
from terminal.hq.policy import TrustPolicy
from terminal.loyalty.rules import Rules
from terminal.protocol.messages import MemberRequest
from tests.support.postgres import Postgres
from tests.support.shared import EXAMPLES
from tests.sync.harness import CARD_KEY

TRUST = TrustPolicy.from_mapping({"holds": {
    "max_per_till": 100000, "max_per_member": 1000, "max_points_per_till": 1000000000,
    "max_per_till_member_per_hour": 100000}})
_ASK = holds.ASK.replace("?", "%s")


def spin(stop: Any) -> None:
    while not stop.is_set():
        sum(range(10_000))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def loop_way(ledger: ChainLedger, way: str, requests: list[MemberRequest],
                   in_flight: int) -> list[float]:
    answering = LoopHolds(ledger, connections=in_flight, max_connections=in_flight)
    await answering.open()
    times: list[float] = []
    gate = asyncio.Semaphore(in_flight)

    async def pipelined(conn: Any, parameters: tuple[Any, ...]) -> Any:
        # Session 13's loop way: the lock and ASK in the pipeline's implicit transaction.
        member = parameters[1]  # ASK's first parameter (the lock key is the function's)
        cursor = await loop_holds._locked(conn, [member] if member else [], _ASK,
                                          parameters[1:])
        return await cursor.fetchone()

    if way == "loop-pipeline":
        loop_holds._ask = pipelined  # type: ignore[assignment]

    async def one(request: MemberRequest) -> None:
        async with gate:
            start = time.perf_counter()
            answer = await answering.answer(request, "S001", "T01")
            times.append(time.perf_counter() - start)
            assert answer.ok, answer.error
            assert (await answering.answer(MemberRequest("void", None, None, request.hold_id),
                                           "S001", "T01")).ok

    try:
        await asyncio.gather(*(one(request) for request in requests))
    finally:
        await answering.close()
    return times


def thread_way(ledger: ChainLedger, way: str, requests: list[MemberRequest],
               in_flight: int) -> list[float]:
    times: list[float] = []

    def one(numbered: tuple[int, MemberRequest]) -> None:
        # On a holding thread of the ledger's (its models are bound there), as the collector.
        n, request = numbered
        ledger.holding[n % len(ledger.holding)].call(answer, request)

    def answer(request: MemberRequest) -> None:
        start = time.perf_counter()
        if way == "thread-function":
            answer = ledger.answer(request, "S001", "T01")
        else:  # session 12's: BEGIN, lock, ASK, COMMIT pipelined on Peewee's connection
            now = datetime.now(UTC)
            with pipelined_writing(ledger.db, [request.member or ""]):
                cursor = ledger.db.execute_sql(
                    holds.ASK.replace("?", ledger.db.param),
                    ledger.ask_parameters(request, "S001", "T01", now))
            found, inserted = holds.asked(cursor.fetchone(), request)
            answer = ledger.judge_ask(request, "S001", "T01", found, inserted, now)
        times.append(time.perf_counter() - start)
        assert answer.ok, answer
        assert ledger.answer(MemberRequest("void", None, None, request.hold_id), "S001",
                             "T01").ok

    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(one, enumerate(requests)))
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--holds", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--busy", type=int, default=3)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ways", default="loop-pipeline,loop-function,thread-pipeline,"
                        "thread-function")
    args = parser.parse_args()
    postgres = Postgres()
    postgres.start()
    try:
        dsn = new_database(postgres, args.members)
        rules = Rules.from_mapping(__import__("tomllib").loads(
            (EXAMPLES / "rules.toml").read_text()))
        ledger = ChainLedger(open_hq_database(dsn, migrate=False), rules, CARD_KEY,
                             hold_ttl=timedelta(hours=1), trust=TRUST)
        rng = random.Random(14)
        original = loop_holds._ask
        for busy in (0, args.busy):
            stop = multiprocessing.get_context("fork").Event()
            spinners = [multiprocessing.get_context("fork").Process(target=spin, args=(stop,))
                        for _ in range(busy)]
            for process in spinners:
                process.start()
            try:
                for round_ in range(args.rounds):
                    for way in args.ways.split(","):
                        requests = [MemberRequest("hold", card_hash(rng.randrange(args.members)),
                                                  500, str(uuid.uuid4()))
                                    for _ in range(args.holds)]
                        loop_holds._ask = original
                        cpu = time.process_time()
                        if way.startswith("loop"):
                            times = asyncio.run(loop_way(ledger, way, requests, args.in_flight))
                        else:
                            times = thread_way(ledger, way, requests, args.in_flight)
                        cpu = (time.process_time() - cpu) / len(requests) * 1000
                        print(f"{datetime.now(UTC):%H:%M:%S} load {os.getloadavg()[0]:4.1f} "
                              f"busy {busy} round {round_ + 1} {way:16s} hold p50 / p99 "
                              f"{pct(times, 0.5):6.2f} / {pct(times, 0.99):6.2f} ms, CPU "
                              f"{cpu:.2f} ms a hold and its void", flush=True)
            finally:
                stop.set()
                for process in spinners:
                    process.join(10)
        ledger.close()
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
