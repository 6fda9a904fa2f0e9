"""`posterm-hq collect`: run a collector until SIGINT/SIGTERM.

    posterm-hq collect --db hq.db --rules rules.toml --card-key-file card.key \
        --host broker --ca ca.crt --cert hq.crt --key hq.key

``--db`` is a SQLite path or a ``postgresql://`` URL; run several collectors against one
PostgreSQL database to share the load. ``--card-key-file`` holds the chain's card key (the same
bytes the terminals hash card numbers with, at least 16).

``--member-requests apart`` answers the tills' lookups and holds in a process of its own (forked at
start, its own ledger, database connections and MQTT client ``CLIENT-ID-requests``, in the same
shared subscription), so they do not share the interpreter's lock and its CPU with the ingest
batches (measured in bench_ingest: a hold's p99 beside the batches about halved). HQ's retained
state says online only once the child is subscribed (a shared Event): a till takes "online" to mean
its holds are answered. The child stops when the collector is gone (it watches its parent's pid)
and the collector stops if the child dies (systemd restarts both). Once the child is forked the
ingest process lowers its own CPU priority by ``--ingest-nice`` (default INGEST_NICE): a till's
hold, a few short round trips with a customer at the counter, then gets a CPU before the backlog's
batches (an unprivileged process may lower its own priority, not raise another's). A niceness
weighs against the processes of the same scheduling group: the service's cgroup with the CPU
controller on, else its session's autogroup (a systemd service is a session of its own), so the
ingest process yields to its own member-request process, not to the rest of the host. With
autogroups that was not enough: the collector's group, always runnable under a backlog, waited
its turn with everything else, and the member-request process with it. So the member-request
process is a session of its own (an autogroup, as each PostgreSQL backend is) and asks for a short
slice (Linux 6.12 and later): woken, it gets a CPU before bulk work that has run its fill
(terminal/hq/scheduling.py; session 15: docs/hq.md, "A hold's wake-ups").

With ``apart`` the terminals' events are read by a third process too (terminal/hq/event_reader.py,
MQTT client ``CLIENT-ID-events``): it drains the broker's queue as fast as events come and hands
them to the ingest process over a pipe, so a burst waits in the collector rather than past the
broker's ``max_queued_messages``, which drops it. It keeps the collector's priority (forked before
the ingest process lowers its own): its work is small (about a fifth of the ingest's CPU an event)
and its whole point is to drain the broker's queue through a burst; niced with the ingest (for a
while in session 14) it fell behind a burst on a quiet machine and the broker dropped. Either
process stops when the other is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path

from terminal.hq import scheduling
from terminal.hq.bundles import BuildError, read_toml
from terminal.hq.chain_ledger import UNWAITED, ChainLedger
from terminal.hq.collector import AllSet, Collector, Flag, HoldsAnswered
from terminal.hq.database import open_hq_database
from terminal.hq.event_reader import EventReader
from terminal.hq.member_ops.publish import Signer
from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.hq.policy import PolicyError, TrustPolicy
from terminal.hq.until_signal import run_until_signal
from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import Rules
from terminal.protocol.topics import Topics

# Niceness the ingest process adds once member requests are apart, so a till's hold gets a CPU
# before the backlog's bulk work (the event reader keeps the collector's: it drains bursts).
# Session 14 (docs/hq.md, "Bulk work niced, a hold in one statement"; load 12-17):
# bench_ingest.py (c)'s hold p99 under the backlog 85-91 ms niced against 136-168 not, the backlog
# in at 144-216 events/s against 212-241; (b1) 1,041 against 875 events/s in one pair. Session
# 10's 3x slower niced ingest was not seen again.
INGEST_NICE = 10
# Where a till's holds and voids are answered on PostgreSQL: on the member-request process's
# event loop (terminal/hq/loop_holds.py) or on the ledger's holding threads. In session 13 the
# loop lengthened the p99 (seven passes through the loop a hold, every hold in flight waiting
# for the loop thread's CPU); since migration 33 a hold is one statement and one pass, and the
# loop measured better every time: bench_ingest.py (c) on a quiet machine (docs/hq.md, "On a quiet
# machine at the end of session 14") hold p99 under the backlog 29.1 ms against the threads'
# 56.6, at load 12-15 61.7 against 85.4.
HOLDS = "loop"
# How long one ingest transaction should take (ChainLedger.batch_seconds): a hold on a member a
# batch holds waits about that long at most (bench_ingest.py part (c)).
BATCH_MS = 100


def _milliseconds(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} ms is negative")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, required=True, help="the chain's rules TOML")
    parser.add_argument("--card-key-file", type=Path, required=True)
    add_broker_options(parser, "posterm-hq-collect")
    parser.add_argument("--batch", type=int, default=500, help="events per batch at most")
    parser.add_argument("--batch-ms", type=_milliseconds, default=BATCH_MS, metavar="MS",
                        help="how long one transaction of a batch should take: a batch goes in "
                             "consecutive transactions of as many events as that allows, so a "
                             "hold on a member a batch holds waits about that long at most; with "
                             f"--member-requests apart a transaction may take {UNWAITED} times "
                             "that while tills ask no hold or void, and ends once it has taken MS "
                             f"while one is answered; 0: a batch is one transaction (default "
                             f"{BATCH_MS})")
    parser.add_argument("--trust", type=Path, help="HQ's trust policy TOML: operators and their "
                        "roles, adjustment, hold and rate limits (terminal/hq/policy.py); "
                        "without it no till adjustment is applied")
    parser.add_argument("--member-requests", choices=("here", "apart"), default="here",
                        help="answer member lookups and holds in this process (here) or in a "
                             "process of their own (apart)")
    parser.add_argument("--ingest-nice", type=int, default=INGEST_NICE, choices=range(20),
                        metavar="0-19", help="with --member-requests apart: niceness the ingest "
                        "process adds to itself (the member-request process and the event reader "
                        "keep the collector's), so a till's hold gets a CPU before the backlog's "
                        f"batches; 0: the same priority (default {INGEST_NICE})")
    parser.add_argument("--holds", choices=("loop", "threads"), default=HOLDS,
                        help="on PostgreSQL, answer the tills' holds and voids on the event loop "
                             "(psycopg's async connections, no thread hand-off) or on holding "
                             f"threads (default {HOLDS}); SQLite's are on threads")
    parser.add_argument("--keys", type=Path,
                        help="directory made by keygen (signing.key, delegation.json): publish "
                             "the member states HQ's member operations change, signed")


def load_trust(path: Path | None) -> TrustPolicy:
    """HQ's trust policy from ``path`` (the defaults without one); BuildError names what is
    wrong with it."""
    try:
        return TrustPolicy.load(path) if path is not None else TrustPolicy()
    except PolicyError as exc:
        raise BuildError(str(exc)) from None


def open_ledger(db_url: str, rules_path: Path, card_key_path: Path,
                trust_path: Path | None = None) -> ChainLedger:
    try:
        rules = Rules.from_mapping(read_toml(rules_path))
    except RulesError as exc:
        raise BuildError(f"{rules_path}: {exc}") from None
    trust = load_trust(trust_path)
    return ChainLedger(open_hq_database(db_url, migrate=False), rules,
                       card_key_path.read_bytes().strip(), trust=trust)


# Allocations (less deallocations) between two of the ingest process's young collections
# (gc.set_threshold's first; Python's default 700): a replayed sale makes and drops hundreds of
# small objects, and at 700 the young generation was collected some 200 times for 4,000 events,
# promoting what was alive at the moment to be walked again (bench_ingest.py (b1), session 15,
# timed by gc.callbacks: the ingest process's collections over its whole life 0.08-0.10 s of CPU
# at 700, 0.05 s at 10,000, of 1.3-1.5 s). A young collection walks only what is alive then:
# about 2 ms each at 10,000.
INGEST_GC_YOUNG = 10_000


def settle_heap(what: str, young: int | None = None) -> int:
    """Keep what a process has made so far (modules, rules, the ledger and its connections)
    out of Python's later full collections (``gc.freeze``), after one collection of the garbage
    made meanwhile; returns how many objects are kept out. With ``young``, the young
    generation is collected after that many allocations from then on (INGEST_GC_YOUNG).

    A full collection walks every object there is while holding the interpreter's lock: at
    about 55,000 objects it stopped a collector's process for 70-220 ms (bench_ingest.py (c),
    load 6-8): the member-request process once, at its first hold, and the ingest process every
    8-10 s under a backlog, in the middle of a transaction holding its members' locks. What is
    made at start-up lives as long as the process, so walking it finds nothing; kept out, a
    full collection walks only what was made since. Before the fork it also keeps the child's
    collections from writing to (and so copying) every page of the parent's heap."""
    gc.collect()
    gc.freeze()
    kept = gc.get_freeze_count()
    if young is not None:
        gc.set_threshold(young, *gc.get_threshold()[1:])
    logging.getLogger(__name__).info("%s: %d objects kept out of full collections", what, kept)
    return kept


class Apart:
    """The processes ``--member-requests apart`` forks: the member-request process, which sets
    ``answering`` while it answers, and the event reader, which sets ``reading`` while it reads
    and writes to ``events_from``. ``ready`` is set when both are."""

    def __init__(self, args: argparse.Namespace) -> None:
        fork = multiprocessing.get_context("fork")
        parent = os.getpid()
        self.answering, self.reading = fork.Event(), fork.Event()
        # The holds and voids the member-request process is answering and has begun, for the
        # ingest process's transactions (ChainLedger.holds_answered).
        self.holding = HoldsAnswered(fork.RawArray("q", 2))
        self.requests = fork.Process(target=_answer_requests,
                                     args=(args, parent, self.answering, self.holding),
                                     name="posterm-hq-requests")
        self.requests.start()
        # The pipe is made after the member-request process is forked: it holds neither end.
        self.events_from, writing = os.pipe()
        self.reader = fork.Process(target=_read_events,
                                   args=(args, parent, self.reading, self.events_from,
                                         writing),
                                   name="posterm-hq-events")
        self.reader.start()
        os.close(writing)  # the reader's end only: its exit closes the pipe
        self.ready = AllSet(self.answering, self.reading)

    def processes(self) -> tuple[multiprocessing.Process, ...]:
        return self.requests, self.reader

    def alive(self) -> bool:
        return all(process.is_alive() for process in self.processes())

    def stop(self) -> None:
        for process in self.processes():
            if process.is_alive():
                process.terminate()
        for process in self.processes():
            process.join(30)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    apart = None
    if args.member_requests == "apart":  # forked before this process opens anything
        settle_heap("collect (before the fork)")
        apart = Apart(args)
        if args.ingest_nice:
            os.nice(args.ingest_nice)  # this process only: the children keep their priority
    try:
        return _collect(args, apart)
    finally:
        if apart is not None:
            apart.stop()


def _answer_requests(args: argparse.Namespace, parent: int, answering: Flag,
                     holding: HoldsAnswered) -> None:
    """The member-request process: answers until SIGTERM or until ``parent`` is gone (even
    SIGKILLed: this process is then handed to another, and its parent pid changes).

    Polled (every half second) rather than asked of the kernel by PR_SET_PDEATHSIG: that
    signal comes again each time the dying parent's threads hand this process on, and one
    arriving after asyncio closed its loop (which restores SIGTERM's default action) ended this
    process before it closed its database and said it stopped (seen with strace in
    tests/trust/test_requests_apart.py: two SIGTERMs from the parent's pid)."""
    scheduling.answer_promptly()
    ledger = open_ledger(args.db, args.rules, args.card_key_file, args.trust)
    args.client_id = f"{args.client_id}-requests"
    collector = Collector(ledger, mqtt_config(args, backoff_max=10.0), Topics(args.topic_root),
                          serves="requests", answering=answering,
                          holds_on_loop=args.holds == "loop", holding=holding)
    settle_heap("member-request process")
    try:
        asyncio.run(run_until_signal(collector, lambda: os.getppid() == parent))
    finally:
        ledger.close()
        logging.getLogger(__name__).info("member-request process stopped: %s",
                                         dict(collector.counts))


def _read_events(args: argparse.Namespace, parent: int, subscribed: Flag, reading: int,
                 writing: int) -> None:
    """The event reader's process: reads until SIGTERM, or until ``parent`` is gone (polled, as
    the member-request process does) or has closed the pipe."""
    os.close(reading)
    try:
        trust = load_trust(args.trust)
    except BuildError as exc:
        print(f"collect: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    args.client_id = f"{args.client_id}-events"
    reader = EventReader(mqtt_config(args, backoff_max=10.0), Topics(args.topic_root),
                         trust.limits, writing, subscribed)
    settle_heap("event reader")
    try:
        asyncio.run(run_until_signal(
            reader, lambda: os.getppid() == parent and not reader.lost))
    finally:
        logging.getLogger(__name__).info("event reader stopped: %s", dict(reader.counts))


def _collect(args: argparse.Namespace, apart: Apart | None) -> int:
    try:
        ledger = open_ledger(args.db, args.rules, args.card_key_file, args.trust)
    except (BuildError, OSError, ValueError) as exc:
        print(f"collect: {exc}", file=sys.stderr)
        return 1
    ledger.batch_seconds = args.batch_ms / 1000 if args.batch_ms > 0 else None
    if apart is not None:  # transactions as long as the tills' holds allow
        ledger.holds_answered = apart.holding
    try:
        signer = Signer.load(args.keys) if args.keys else None
    except (OSError, ValueError) as exc:
        print(f"collect: --keys: {exc}", file=sys.stderr)
        ledger.close()
        return 1
    config = mqtt_config(args, backoff_max=10.0)
    try:
        collector = Collector(ledger, config, Topics(args.topic_root), batch_max=args.batch,
                              signer=signer, serves="all" if apart is None else "events",
                              ready=None if apart is None else apart.ready,
                              events_from=None if apart is None else apart.events_from,
                              holds_on_loop=args.holds == "loop")
        settle_heap("collect", young=INGEST_GC_YOUNG)
        asyncio.run(serve(collector, None if apart is None else apart.alive))
    finally:
        ledger.close()
    if apart is not None and not apart.alive():
        for process in apart.processes():
            if not process.is_alive():
                print(f"collect: the {process.name} process exited ({process.exitcode})",
                      file=sys.stderr)
        return 1
    return 0


async def serve(collector: Collector, alive: Callable[[], bool] | None = None) -> None:
    try:
        await run_until_signal(collector, alive)
    finally:
        logging.getLogger(__name__).info("collector stopped: %s", dict(collector.counts))
