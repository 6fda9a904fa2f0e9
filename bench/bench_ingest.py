"""HQ ingest benchmark (issue 11): real `posterm-hq collect` processes on one PostgreSQL.

A chain of MEMBERS members is loaded first (COPY: each with one lot of 100,000 points), then tills
(TILLS stand-ins, each its own MQTT client and certificate) publish a realistic mix at QoS 1:
70% member sales, 10% member sales with a redemption whose hold the till asks HQ for first (MQTT 5
request/response, as a till does), 5% refunds of earlier member sales, 15% registrations of new
cards. Events in flight are bounded (WINDOW, all tills together); what HQ leaves unacked (a
refund that overtook its sale) is published again, as a till's outbox does. The clock stops when
the last ack arrives.

(a) the database's limit: psycopg 3 writing the very rows run (b1) left (every row of every
    table the run added, each member's balance updated once per ledger entry, as the store
    does), table by table in the same number of transactions as (b1)'s batches, to a fresh
    database of the same server loaded with the same chain; the median of LIMIT_RUNS such runs
    (--limit-runs), each on a database of its own: one run moved by 25-40% from run to run on
    a quiet machine (session 18: 2,949-4,174 events/s), and the ratio's spread was its;
(b) the mix through one collector (b1) and two (b2) sharing the subscription, each run as the
    systemd unit runs it (--member-requests apart, the ingest process niced by its default
    --ingest-nice; --member-requests here to compare); timed from a backlog in the broker, as
    after an outage: the collectors subscribed and online, their ingest processes stopped
    (SIGSTOP; their member-request processes answer the tills' holds), the tills publish every
    event, and the clock runs from the SIGCONT to the last ack (the broker's max_queued_messages
    raised for it, --backlog-queue: the shipped 1,000 drops the rest of a collector's share).
    Then "live" (the figure before session 11), on the same database with fresh collectors on
    the shipped broker: the tills publishing while the collectors take their events (with
    --member-requests here, only live). The broker's drop notices are counted for both; lock
    waits sampled every 10 ms from pg_stat_activity: backends waiting for a lock, as a share of
    the backends inside a transaction (each collector's batch);
(c) a till's member lookup, hold and void round trips (p50, p99) while BACKLOG events are
    ingested, and with HQ idle (voids timed since session 13). By default (--c-backlog broker,
    since session 17) the backlog is in the broker, as (b)'s: ten tills publish it to the
    collector with its ingest stopped, and the measuring till's round trips are timed from the
    SIGCONT to the last ack, while the collector drains it; the backlog's tills then only take
    their acks. Its redemptions are made offline, as in an outage (no hold asked;
    --c-backlog-holds asks HQ for them while the ingest is stopped). With --c-backlog live
    (the figure before session 17) the ten tills publish the backlog meanwhile, on this
    machine's two cores, and their TLS and Python compete with HQ's.
Targets: (b1) >= 0.5 x (a); (b2) >= 1.0 x (b1); lock waits < 5%; (c) hold p99 under backlog
<= 50 ms and <= 3 x idle.

PostgreSQL runs with fsync=off, as in the tests (a scratch server): the figures measure the
collectors' and the database's work, not this disk. The collectors run with a trust policy that
raises the per-till rate and hold limits (the stand-ins are a few tills publishing a chain's
load).

--chain-scale MEMBERS instead makes MEMBERS members with ten entries each and one lot each, due
(generate_series in the database), and measures in-process on a ChainLedger: member lookups and
statements (p50, p99) and the expiry sweep of every lot. Targets at 1,000,000 members: lookup p99
< 2 ms, statement p99 < 20 ms, sweep < 60 s.

Run: .venv/bin/python bench/bench_ingest.py [--events N] [--backlog N] [--members N] [--idle N]
     .venv/bin/python bench/bench_ingest.py --chain-scale 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from peewee import sort_models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' broker and PKI support

from bench_sync import files, tls_broker

from terminal.hq.chain_ledger import SWEEP_CHUNK, SWEEP_WORKERS
from terminal.hq.database import SEQ_BLOCK, open_hq_database
from terminal.hq.models import HQ_MODELS
from terminal.loyalty.store.models import MODELS
from terminal.protocol.messages import Ack, HqState, MemberRequest, MemberResponse
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig
from terminal.protocol.topics import Topics
from tests.support.mosquitto import BrokerTls, Mosquitto
from tests.support.pki import CertificateAuthority
from tests.support.postgres import Postgres
from tests.support.shared import EXAMPLES
from tests.sync.harness import CARD_KEY

T = Topics()
BATCH = 500  # the collector's --batch
TILLS = 10
LIMIT_RUNS = 3  # (a) runs, each on a fresh database; (a) is their median
WINDOW = 4_000  # events in flight, all tills together (the collector's queue holds 20,000)
HQ_CLI = Path(sys.executable).with_name("posterm-hq")
POINTS = 100_000  # each member's points at the start
TRUST = """
[limits]
requests_per_second = 100000.0
events_per_second = 100000.0
queue = 200000
[holds]
max_per_till = 100000
max_per_member = 1000
max_points_per_till = 1000000000
max_per_till_member_per_hour = 100000
"""


def card_hash(n: int) -> str:
    return hashlib.sha256(f"bench-card-{n}".encode()).hexdigest()


# -- the chain ------------------------------------------------------------------------------------

def load_chain(dsn: str, members: int) -> None:
    """HQ's schema, then ``members`` members, each with one lot of POINTS, by COPY."""
    open_hq_database(dsn).close()
    now = int(time.time() * 1e6)
    expires = now + int(timedelta(days=700).total_seconds() * 1e6)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        # Reviewed now, as every member is at the month's review (a first sale reviews one
        # never reviewed).
        with cur.copy("COPY member (id, card_hash, card_last4, name, phone_last4, "
                      "referral_paid, registered_us, tier, tier_reviewed_us, balance, debt) "
                      "FROM STDIN") as copy:
            for n in range(members):
                copy.write_row((f"m{n:07d}", card_hash(n), "0000", "", "", False, now,
                                "member", now, POINTS, 0))
        with cur.copy("COPY ledger_entry (id, seq, member_id, kind, points, debt_delta, reason, "
                      "operator, wall_us, trusted) FROM STDIN") as copy:
            for n in range(members):
                copy.write_row((f"e{n:07d}", n + 1, f"m{n:07d}", "adjust", POINTS, 0,
                                "bench", "bench", now, True))
        with cur.copy("COPY lot (id, member_id, earned_us, expires_us, points, remaining, "
                      "dated_trusted) FROM STDIN") as copy:
            for n in range(members):
                copy.write_row((f"e{n:07d}", f"m{n:07d}", now, expires, POINTS, POINTS, True))
        cur.execute("SELECT setval('hq_seq_block', %s, false)", (members // SEQ_BLOCK + 1,))
        cur.execute("INSERT INTO meta (key, value) VALUES ('seq', %s) ON CONFLICT (key) "
                    "DO UPDATE SET value = excluded.value", (str(members),))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def new_database(postgres: Postgres, members: int) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING 'UTF8'")
    dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    load_chain(dsn, members)
    return dsn


# -- the mix --------------------------------------------------------------------------------------

@dataclass
class Outgoing:
    id: str
    payload: bytes
    hold: MemberRequest | None = None


@dataclass
class Till:
    store: str
    seq: int = 0
    sales: list[tuple[str, str, int]] = field(default_factory=list)  # (sale, card, fen)
    events: list[Outgoing] = field(default_factory=list)


def mix(count: int, members: int, seed: int, prefix: str, offline: bool = False) -> list[Till]:
    """``count`` events over TILLS tills, in each till's order (see the module's doc); with
    ``offline``, the redemptions made while HQ was unreachable: no hold asked, the sale marked
    offline, HQ judging it by the rules' offline allowance (2,000 points a member a day in
    shared/examples/rules.toml, over the 500 a redemption here)."""
    rng = random.Random(seed)
    tills = [Till(f"S{n + 1:03d}") for n in range(TILLS)]
    now = datetime.now(UTC).isoformat()
    for n in range(count):
        till = tills[n % TILLS]
        till.seq += 1
        roll, hold = rng.random(), None
        if roll < 0.80:
            card = card_hash(rng.randrange(members))
            fen = rng.randrange(1_000, 20_000)
            sale = f"{prefix}{till.store}-{till.seq}"
            redeem = 500 if roll >= 0.70 else 0
            hold_id = str(uuid.uuid4()) if redeem and not offline else None
            kind, body = "sale", {
                "sale": sale, "member": None, "card_hash": card, "tender": "cash",
                "redeem_points": redeem, "hold": hold_id, "online": not offline,
                "lines": [{"sku": "SKU1", "name": "货品", "category": "grocery", "qty": 1,
                           "price_fen": fen, "paid_fen": fen - redeem}],
                # 100 points take 1 yuan (100 fen) off: the points redeemed are the fen.
                "list_fen": fen, "discount_fen": 0, "deduction_fen": redeem,
                "paid_fen": fen - redeem, "operator": "bench"}
            if hold_id is not None:
                hold = MemberRequest("hold", card, redeem, hold_id)
            till.sales.append((sale, card, fen))
        elif roll < 0.85 and len(till.sales) > 200:
            sale, card, fen = till.sales.pop(rng.randrange(len(till.sales) - 200))
            kind, body = "refund", {
                "refund": f"{prefix}R{till.store}-{till.seq}", "sale": sale, "member": None,
                "card_hash": card, "lines": [{"line_no": 1, "sku": "SKU1", "qty": 1, "fen": fen}],
                "refunded_fen": fen, "operator": "bench"}
        else:
            kind, body = "register", {
                "card_hash": card_hash(10_000_000 + seed * 1_000_000 + n), "card_last4": "1234",
                "name": "会员", "member": None}
        event_id = str(uuid.uuid4())
        till.events.append(Outgoing(event_id, json.dumps({
            "id": event_id, "kind": kind, "store": till.store, "terminal": "T01",
            "seq": till.seq, "epoch": 1, "wall_time": now, "time_trusted": True,
            "body": body}).encode(), hold))
    return tills


# -- collectors and tills -------------------------------------------------------------------------

@contextmanager
def collectors(count: int, db: str, broker: Mosquitto, ca: CertificateAuthority,
               directory: Path, requests: str = "here",
               ingest_nice: int | None = None, batch_ms: int | None = None,
               holds: str | None = None) -> Iterator[list[list[int]]]:
    """``count`` collectors running, online and subscribed; yields each one's ingest pids: its
    own and, with ``requests`` apart, its event reader's (terminal/hq/event_reader.py)."""
    tls = files(ca, "hq")
    key, trust = directory / "card.key", directory / "trust.toml"
    key.write_bytes(CARD_KEY)
    trust.write_text(TRUST)
    log_subscriptions(broker)
    since = len(broker.log_text())  # the log of this run's collectors only
    logs = [(directory / f"collect-{n}.log").open("w") for n in range(count)]
    processes = [
        subprocess.Popen(
            [str(HQ_CLI), "collect", "--db", db, "--rules", str(EXAMPLES / "rules.toml"),
             "--card-key-file", str(key), "--host", broker.host, "--port", str(broker.port),
             "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key),
             "--client-id", f"bench-hq-{n}", "--batch", str(BATCH), "--trust", str(trust),
             "--member-requests", requests,
             *(["--ingest-nice", str(ingest_nice)] if ingest_nice is not None else []),
             *(["--batch-ms", str(batch_ms)] if batch_ms is not None else []),
             *(["--holds", holds] if holds is not None else [])],
            # A session of its own, as systemd starts a service: the ingest process's
            # niceness then weighs against its member-request process only, not against the
            # bench's tills, broker and PostgreSQL (docs/hq.md, "Member requests beside ingest").
            stderr=log, stdout=log, start_new_session=True)
        for n, log in enumerate(logs)]
    try:
        asyncio.run(wait_online(broker, ca, count))
        reading = "-events" if requests == "apart" else ""  # who subscribes to the events
        wait_subscribed(broker, [f"bench-hq-{n}{reading}" for n in range(count)], since)
        running = [[process.pid, *readers(directory / f"collect-{n}.log")]
                   for n, process in enumerate(processes)]
        started = [sum(map(cpu_seconds, pids)) for pids in running]
        yield running
    finally:
        if "started" in locals():  # each collector's CPU while the tills published
            print("      collectors' CPU (ingest and event reader): " + ", ".join(
                f"{sum(map(cpu_seconds, pids)) - before:.1f} s"
                for pids, before in zip(running, started, strict=True)))
        for process in processes:
            process.terminate()
        for n, process in enumerate(processes):
            process.wait(60)
            logs[n].close()
            text = (directory / f"collect-{n}.log").read_text()
            last = [line for line in text.splitlines() if "collector stopped" in line]
            counts = last[-1].split("stopped: ")[-1] if last else text[-300:]
            print(f"      collector {n}: {counts}")


def readers(log: Path) -> list[int]:
    """The pid of the event reader a collector's log names (none with member requests here)."""
    return [int(pid) for pid in re.findall(r"event reader \(pid (\d+)\)", log.read_text())]


def log_subscriptions(broker: Mosquitto) -> None:
    """Have the broker log each subscription (``log_type subscribe``, taken on a SIGHUP):
    :func:`wait_subscribed` reads them."""
    text = broker.conf.read_text()
    if "\nlog_type subscribe\n" in text:
        return
    broker.conf.write_text(text + "log_type subscribe\n")
    if broker.process is not None:
        broker.reload()


def wait_subscribed(broker: Mosquitto, clients: list[str], since: int,
                    timeout: float = 60) -> None:
    """Until every one of ``clients`` has subscribed to the terminals' events (in the broker's
    log from offset ``since``: the same client ids subscribed in an earlier run). HQ's retained
    "online" cannot say which collector said it (every collector says it, and says it again),
    so counting it let (b2) start with one collector subscribed: its twin then took none of
    the backlog (seen in session 11: "collector 1: {}")."""
    deadline = time.monotonic() + timeout
    while True:
        lines = broker.log_text()[since:].splitlines()
        events = T.all_terminals("events")
        missing = [client for client in clients if not any(
            f" {client} " in line and line.rstrip().endswith(events) for line in lines)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not subscribed to the events after {timeout} s: {missing}; "
                               f"the broker's log since: {lines[-20:]}")
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU so far (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster: int) -> float:
    """PostgreSQL's CPU so far: the postmaster's own, its children's that ended (the kernel adds
    a waited child's to its parent's cutime and cstime) and its live children's (the collectors'
    backends)."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    ended = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    live = 0.0
    for child in children:
        with suppress(FileNotFoundError, ProcessLookupError):
            live += cpu_seconds(int(child))
    return cpu_seconds(postmaster) + ended + live


async def wait_online(broker: Mosquitto, ca: CertificateAuthority, count: int) -> None:
    online, announced = 0, asyncio.Event()

    def on_state(message: Message) -> None:
        nonlocal online
        if message.payload and HqState.from_json(message.payload).state == "online":
            online += 1
            if online >= count:
                announced.set()

    watcher = MqttClient(MqttConfig(broker.host, broker.port, "bench-watch",
                                    tls=files(ca, "hq")))
    await watcher.subscribe(T.hq_state(), on_state)
    await watcher.start()
    try:
        await asyncio.wait_for(announced.wait(), 60)
    finally:
        await watcher.stop()


async def client(broker: Mosquitto, ca: CertificateAuthority, store: str) -> MqttClient:
    mqtt = MqttClient(MqttConfig(broker.host, broker.port, f"{store}-T01-bench",
                                 tls=files(ca, f"{store}/T01")))
    return mqtt


async def ask(mqtt: MqttClient, store: str, request: MemberRequest) -> MemberResponse:
    reply = await mqtt.request(T.member_request(store, "T01"), request.to_json(),
                               response_topic=T.member_response(store, "T01"), timeout=60)
    return MemberResponse.from_json(reply.payload)


async def publish(broker: Mosquitto, ca: CertificateAuthority, tills: list[Till],
                  held: tuple[Callable[[], None], Callable[[], None]] | None = None) -> float:
    """Events per second from the first publish to the last ack; with ``held`` (stop, resume
    the collectors' ingest), from a backlog: ``stop()`` before the tills publish, every event
    in the broker (PUBACKed) before ``resume()``, timed from it to the last ack."""
    acked: set[str] = set()
    clients = {}
    for till in tills:
        mqtt = await client(broker, ca, till.store)
        await mqtt.subscribe(T.acks(till.store, "T01"),
                             lambda m: acked.update(Ack.from_json(m.payload).ids))
        await mqtt.start()
        await mqtt.wait_ready(10)
        clients[till.store] = mqtt
    total = sum(len(till.events) for till in tills)
    sent = 0
    refused: list[str] = []

    async def run(till: Till) -> None:
        nonlocal sent
        mqtt, topic = clients[till.store], T.events(till.store, "T01")
        for item in till.events:
            while held is None and sent - len(acked) > WINDOW:
                await asyncio.sleep(0.002)
            if item.hold is not None:
                answer = await ask(mqtt, till.store, item.hold)
                if not answer.ok:
                    refused.append(answer.error or "")
            await mqtt.publish(topic, item.payload)
            sent += 1

    if held is not None:
        held[0]()
    start = time.perf_counter()
    await asyncio.gather(*(run(till) for till in tills))
    published = time.perf_counter() - start
    if held is not None:  # every event is in the broker, queued for the stopped collectors
        held[1]()
        start = time.perf_counter()
    # What HQ deferred (a refund that overtook its sale on another collector) comes again.
    for _ in range(20):
        before, waited = len(acked), 0.0
        while len(acked) < total and waited < 30.0:  # a batch takes seconds here
            await asyncio.sleep(0.05)
            waited = 0.0 if len(acked) > before else waited + 0.05
            before = len(acked)
        if len(acked) >= total:
            break
        for till in tills:
            for item in till.events:
                if item.id not in acked:
                    await clients[till.store].publish(T.events(till.store, "T01"), item.payload)
    elapsed = time.perf_counter() - start
    for mqtt in clients.values():
        await mqtt.stop()
    if held is None:
        print(f"      tills published all {total} events in {published:.2f} s, the last acked "
              f"at {elapsed:.2f} s")
    else:
        print(f"      backlog: tills published all {total} events in {published:.2f} s to the "
              f"stopped collectors; the last acked {elapsed:.2f} s after they resumed")
    if refused:
        print(f"      holds refused: {len(refused)} (first: {refused[0]})")
    if len(acked) < total:
        print(f"      NOT ACKED: {total - len(acked)} of {total}")
    return total / elapsed


class LockSampler:
    """The collectors' ingest connections (named by their thread, hq/database.py) waiting for
    a lock / inside a transaction, every 10 ms."""

    def __init__(self, dsn: str, connections: str = "posterm-hq-ledger%") -> None:
        self.dsn, self.waiting, self.busy, self.connections = dsn, 0, 0, connections
        self.kinds: dict[str, int] = {}  # what the waiting connections wait for (pg_locks)
        self.states: dict[str, int] = {}  # the connections' states (active: the server works)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-sampler")

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(0.01):
                waiting, busy = conn.execute(
                    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                    "count(*) FILTER (WHERE xact_start IS NOT NULL AND state <> 'idle') "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE %s", (self.connections,)).fetchone()
                self.waiting += waiting
                self.busy += busy
                for (state,) in conn.execute(
                        "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name LIKE %s", (self.connections,)):
                    self.states[state] = self.states.get(state, 0) + 1
                if waiting:
                    for (kind,) in conn.execute(
                            "SELECT l.locktype FROM pg_locks l JOIN pg_stat_activity a "
                            "ON a.pid = l.pid WHERE NOT l.granted AND a.datname = "
                            "current_database() AND a.application_name LIKE %s",
                            (self.connections,)):
                        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def share(self) -> float:
        return self.waiting / self.busy if self.busy else 0.0


# -- (b) from a backlog ---------------------------------------------------------------------------

@contextmanager
def backlog_broker(ca: CertificateAuthority, directory: Path, queue: int) -> Iterator[Mosquitto]:
    """The shipped broker config with ``max_queued_messages`` raised to ``queue``, for (b)'s
    backlog. Mosquitto hands each message of a shared subscription to the next member of the
    group in turn, connected or not, and queues it for that client past ``max_inflight_messages``
    up to ``max_queued_messages`` (the shipped 1,000), dropping the rest: a collector stopped
    while the tills publish 4,000 events would lose most of its share (they would come again
    only when the tills publish again). (c) keeps the shipped broker."""
    server = ca.server()
    broker = Mosquitto(directory / f"broker-backlog-{uuid.uuid4().hex[:6]}",
                       BrokerTls(ca.ca_file, server.cert, server.key))
    text, count = re.subn(r"(?m)^max_queued_messages \d+$", f"max_queued_messages {queue}",
                          broker.conf.read_text())
    if count != 1:
        raise RuntimeError("the shipped broker config has no max_queued_messages line")
    # The subscriptions logged from the start (log_subscriptions): reloading a broker for it
    # timed out at times on a loaded machine ("mosquitto did not reload within 5.0s").
    broker.conf.write_text(text + "log_type subscribe\n")
    with broker:
        yield broker


def dropped(broker: Mosquitto) -> int:
    """How many times the broker started dropping a client's messages (its queue full: the
    shipped max_queued_messages), from its log (a notice each time a client's queue fills)."""
    return broker.log_text().count("Outgoing messages are being dropped for client")


def stopping(running: list[list[int]], cpu: list[float], postmaster: int | None = None
             ) -> tuple[Callable[[], None], Callable[[], None]]:
    """Stop and resume the collectors' ingest processes and event readers (SIGSTOP, SIGCONT;
    their member-request processes go on answering the tills' holds): connected and subscribed,
    they take nothing while stopped, so the tills' events wait in the broker as after an
    outage. ``cpu`` gets each process's CPU at the resume, then PostgreSQL's (``postmaster``'s
    :func:`server_cpu`) if given."""
    pids = [pid for group in running for pid in group]

    def stop() -> None:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)

    def resume() -> None:
        cpu[:] = [cpu_seconds(pid) for pid in pids]
        if postmaster is not None:
            cpu.append(server_cpu(postmaster))
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    return stop, resume


# -- (a) the database's limit ---------------------------------------------------------------------

def added_rows(dsn: str, members: int) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row the run added, by table, in an order the foreign keys allow."""
    preloaded = {"member": "id NOT LIKE 'm%'", "ledger_entry": f"seq > {members}",
                 "lot": "id NOT LIKE 'e%'", "meta": "false"}
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    with psycopg.connect(dsn) as conn:
        for model in sort_models(MODELS + HQ_MODELS):
            table = model._meta.table_name
            where = preloaded.get(table, "true")
            cur = conn.execute(f"SELECT * FROM {table} WHERE {where}")
            rows = cur.fetchall()
            if rows:
                tables[table] = ([c.name for c in cur.description], rows)
    return tables


def database_limit(dsn: str, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
                   events: int) -> float:
    """Events per second: their rows written by psycopg, in as many transactions as batches."""
    work: list[tuple[str, tuple[Any, ...]]] = []
    for table, (columns, rows) in tables.items():
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
               f"({', '.join(['%s'] * len(columns))})")
        work += [(sql, row) for row in rows]
    if "ledger_entry" in tables:  # the store moves the member's balance with each entry
        columns, rows = tables["ledger_entry"]
        at = columns.index("member_id")
        work += [("UPDATE member SET balance = balance + 0 WHERE id = %s", (row[at],))
                 for row in rows]
    per = max(1, len(work) // max(1, -(-events // BATCH)))
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for first in range(0, len(work), per):
            chunk = work[first:first + per]
            with conn.transaction(), conn.cursor() as cur:
                for sql in dict.fromkeys(sql for sql, _ in chunk):
                    cur.executemany(sql, [row for s, row in chunk if s == sql])
        elapsed = time.perf_counter() - start
    return events / elapsed


def median_limit(postgres: Postgres, members: int,
                 tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]], events: int,
                 runs: int) -> float:
    """(a): the median of ``runs`` runs of :func:`database_limit`, each on a fresh database
    loaded with the same chain (the rows it writes would collide in one)."""
    limits = [database_limit(new_database(postgres, members), tables, events)
              for _ in range(runs)]
    print(f"    (a) {runs} run(s), each on a fresh database: "
          + ", ".join(f"{limit:.0f}" for limit in limits) + " events/s")
    return statistics.median(limits)


# -- (c) a till's requests ------------------------------------------------------------------------

async def round_trips(broker: Mosquitto, ca: CertificateAuthority, members: int,
                      done: Any, rounds: int) -> tuple[list[float], list[float]]:
    """Lookup, hold and void round trips (seconds) of one till, until ``done()`` says so (or
    ``rounds`` rounds with ``done`` None); each hold is voided after."""
    mqtt = await client(broker, ca, "S099")
    await mqtt.start()
    await mqtt.wait_ready(10)
    rng = random.Random(99)
    lookups, holds, voids = [], [], []
    try:
        while (done is not None and not done()) or (done is None and len(holds) < rounds):
            card = card_hash(rng.randrange(members))
            start = time.perf_counter()
            assert (await ask(mqtt, "S099", MemberRequest("lookup", card))).ok
            lookups.append(time.perf_counter() - start)
            hold_id = str(uuid.uuid4())
            start = time.perf_counter()
            answer = await ask(mqtt, "S099", MemberRequest("hold", card, 500, hold_id))
            holds.append(time.perf_counter() - start)
            assert answer.ok, answer.error
            start = time.perf_counter()
            answer = await ask(mqtt, "S099", MemberRequest("void", None, None, hold_id))
            voids.append(time.perf_counter() - start)
            assert answer.ok, answer.error
            await asyncio.sleep(0.02)
    finally:
        await mqtt.stop()
    return lookups, holds, voids


class TillApart:
    """The till whose round trips (c) measures, in a process of its own: a till is a machine of
    its own, and in the bench's process its requests and answers waited for the event loop the
    ten tills publishing the backlog keep busy (TLS, acks, their window's polling). Started
    with ``rounds`` (idle: that many rounds) or with none (until :meth:`result`)."""

    def __init__(self, broker: Mosquitto, ca: CertificateAuthority, members: int,
                 rounds: int | None = None, held: bool = False) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._go = context.Event()
        if not held:
            self._go.set()
        self._results = context.Queue()
        self._process = context.Process(
            target=self._run, args=(broker, ca, members, rounds), name="bench-till-S099")
        self._process.start()

    def go(self) -> None:
        """Start timing (a till made with ``held`` waits for this before it connects)."""
        self._go.set()

    def _run(self, broker: Mosquitto, ca: CertificateAuthority, members: int,
             rounds: int | None) -> None:
        done = None if rounds is not None else self._stop.is_set
        self._go.wait()
        self._results.put(asyncio.run(round_trips(broker, ca, members, done, rounds or 0)))

    def result(self) -> tuple[list[float], list[float], list[float]]:
        self._stop.set()
        try:
            lookups, holds, voids = self._results.get(timeout=600)
        finally:
            self._process.join(60)
        return lookups, holds, voids


def under_backlog(broker: Mosquitto, ca: CertificateAuthority, members: int,
                  tills: list[Till], tills_nice: int = 0
                  ) -> tuple[float, list[float], list[float], list[float]]:
    """The backlog's ``tills`` publishing while the measuring till (a process of its own)
    times its round trips; with ``tills_nice``, the backlog's tills at that niceness.

    The backlog's ten tills stand for other machines: in a chain they take none of HQ's CPU,
    here they share the 2 cores with the collector, the broker and PostgreSQL. Niced, they
    yield to what shares their scheduling group (this bench's session: the broker, PostgreSQL's
    backends and the measuring till, which keep niceness 0: forked before this); the
    collector, a session of its own, is not weighed against them by niceness at all (its
    autogroup against the bench's). A model of "elsewhere" that still spends their CPU here,
    so figures are reported both ways (docs/hq.md, session 14 (c)). Only this thread is niced
    (Linux: a thread's own priority; the tills' event loop runs on it), and for the rest of
    the run: the backlog is (c)'s last step."""
    till = TillApart(broker, ca, members)  # forked before this process runs an event loop
    if tills_nice:
        os.nice(tills_nice)
    try:
        rate = asyncio.run(publish(broker, ca, tills))
    finally:
        lookups, holds, voids = till.result()
    return rate, lookups, holds, voids


def draining_backlog(broker: Mosquitto, ca: CertificateAuthority, members: int,
                     tills: list[Till], running: list[list[int]]
                     ) -> tuple[float, list[float], list[float], list[float]]:
    """(c) from a backlog in the broker: the ``tills`` publish every event to the collector
    with its ingest stopped (as (b)), then the measuring till (a process of its own) times its
    round trips from the resume until the last event is acked. The backlog's tills stand for
    other machines and publish before the clock starts, so what the measuring till meets is
    HQ's work alone: the collector, its event reader, PostgreSQL and the broker draining."""
    till = TillApart(broker, ca, members, held=True)  # forked before any event loop runs
    stop, resume = stopping(running, [])

    def resume_and_time() -> None:
        resume()
        till.go()
    try:
        rate = asyncio.run(publish(broker, ca, tills, (stop, resume_and_time)))
    finally:
        till.go()  # so that it ends even if publishing failed before the resume
        lookups, holds, voids = till.result()
    return rate, lookups, holds, voids


# -- chain scale ----------------------------------------------------------------------------------

def make_chain(postgres: Postgres, members: int, per_member: int) -> str:
    """A new database of HQ's schema with ``members`` members, ``per_member`` entries each and
    one lot each, due an hour ago (made by generate_series in the database); returns its DSN."""
    name = f"chain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING 'UTF8'")
    dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    open_hq_database(dsn).close()
    now = int(time.time() * 1e6)
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO member (id, card_hash, card_last4, name, phone_last4, referral_paid, "
            "registered_us, tier, tier_reviewed_us, balance, debt) SELECT 'm' || n, "
            "md5('a' || n) || md5('b' || n), '0000', '', '', false, %s, 'member', %s, 1000, 0 "
            "FROM generate_series(0, %s) n", (now, now, members - 1))
        conn.execute(
            "INSERT INTO ledger_entry (id, seq, member_id, kind, points, debt_delta, reason, "
            "operator, wall_us, trusted) SELECT 'e' || n, n + 1, 'm' || (n %% %s), "
            "CASE WHEN n < %s THEN 'earn' ELSE 'adjust' END, "
            "CASE WHEN n < %s THEN 1000 ELSE 0 END, 0, '', '', %s, true "
            "FROM generate_series(0, %s) n", (members, members, members, now,
                                              members * per_member - 1))
        conn.execute(
            "INSERT INTO lot (id, member_id, earned_us, expires_us, points, remaining, "
            "dated_trusted) SELECT 'e' || n, 'm' || n, %s, %s, 1000, 1000, true "
            "FROM generate_series(0, %s) n", (now - 86_400_000_000, now - 3_600_000_000,
                                              members - 1))
        conn.execute("SELECT setval('hq_seq_block', %s, false)",
                     (members * per_member // SEQ_BLOCK + 1,))
        conn.execute("VACUUM ANALYZE")
    print(f"chain scale: {members} members, {members * per_member} entries, {members} lots "
          f"due, made in {time.perf_counter() - start:.0f} s")
    return dsn


# Lookups made and not counted before the 1,000 measured: a new connection's first statements
# load the server's catalog caches and plans (the first lookup took 14.8 ms of a p99 of 9.7 in
# one run, load 9.5), which a collector's member-request connection pays once, not a lookup.
WARM_LOOKUPS = 20


def chain_scale(postgres: Postgres, members: int, per_member: int,
                workers: int = SWEEP_WORKERS) -> None:
    """``members`` members with ``per_member`` entries each and one lot each, due now (made by
    generate_series in the database), then in-process on a ChainLedger: member lookups and
    statements (p50/p99 of 1,000 and 300 random members) and the expiry sweep of every lot."""
    from terminal.hq.chain_ledger import ChainLedger
    from terminal.hq.policy import TrustPolicy
    from terminal.loyalty.clock import Moment
    from terminal.loyalty.rules import Rules
    from terminal.loyalty.store.ledger_store import CardRef
    from tests.sync.harness import rules_data

    dsn = make_chain(postgres, members, per_member)
    ledger = ChainLedger(open_hq_database(dsn), Rules.from_mapping(rules_data()), CARD_KEY,
                         trust=TrustPolicy())
    rng = random.Random(7)

    def card(n: int) -> str:
        return hashlib.md5(f"a{n}".encode()).hexdigest() + hashlib.md5(f"b{n}".encode()).hexdigest()

    try:
        lookups, statements, cpu = [], [], []
        for n in range(WARM_LOOKUPS + 1000):
            request = MemberRequest("lookup", card(rng.randrange(members)))
            began, used = time.perf_counter(), time.thread_time()
            assert ledger.requests.call(ledger.answer, request, "S001", "T01").ok
            if n >= WARM_LOOKUPS:
                lookups.append(time.perf_counter() - began)
                cpu.append(time.thread_time() - used)
        moment = Moment(datetime.now(UTC))
        for _ in range(300):
            ref = CardRef(card(rng.randrange(members)))
            began = time.perf_counter()
            ledger.requests.call(ledger.reader.statement, ref, moment)
            statements.append(time.perf_counter() - began)
        print(f"    lookup    p50 {pct(lookups, 0.5):6.2f} ms  p99 {pct(lookups, 0.99):6.2f} ms "
              f"(target p99 < 2 ms; after {WARM_LOOKUPS} not counted); of which this "
              f"process's CPU p50 {pct(cpu, 0.5):.2f} ms, p99 {pct(cpu, 0.99):.2f} ms (the rest: "
              "waiting for the server's answer)")
        print(f"    statement p50 {pct(statements, 0.5):6.2f} ms  p99 "
              f"{pct(statements, 0.99):6.2f} ms (target p99 < 20 ms)")
        began = time.perf_counter()
        swept = ledger.thread.call(ledger.expire, datetime.now(UTC), SWEEP_CHUNK, workers)
        took = time.perf_counter() - began
        print(f"    expiry sweep of {swept.lots} lots, {workers} connection(s): {took:.1f} s "
              f"(target < 60 s)")
    finally:
        ledger.close()


def in_process(postgres: Postgres, events: int, members: int, profile: Path | None,
               holds_apart: bool = False, batch_ms: int | None = None) -> None:
    """The mix applied in-process by one ChainLedger (no broker, no MQTT), in batches of BATCH:
    the apply path's own rate, and where its time goes (cProfile, with ``profile``). A hold a
    redemption names is asked first, as a till does."""
    import cProfile
    import pstats

    from terminal.hq.chain_ledger import ChainLedger
    from terminal.hq.policy import TrustPolicy
    from terminal.loyalty.rules import Rules
    from terminal.protocol.messages import Event
    from tests.sync.harness import rules_data

    dsn = new_database(postgres, members)
    trust = Path(tempfile.mkdtemp(prefix="bench-trust-")) / "trust.toml"
    trust.write_text(TRUST)
    ledger = ChainLedger(open_hq_database(dsn, migrate=False), Rules.from_mapping(rules_data()),
                         CARD_KEY, trust=TrustPolicy.load(trust))
    ledger.batch_seconds = batch_ms / 1000 if batch_ms else None
    queue = [item for round_ in zip(*(till.events for till in mix(events, members, 1, "p")),
                                    strict=False) for item in round_]
    profiler = cProfile.Profile() if profile is not None else None
    applied, took, cpu = 0, 0.0, 0.0
    stop = threading.Event()
    idle = holds_in_process(ledger, members, stop, 100)
    busy: list[float] = []
    if holds_apart:  # the holds from a process of their own, its own ledger and connections
        import multiprocessing

        context = multiprocessing.get_context("fork")
        results, halt = context.Queue(), context.Event()

        def apart() -> None:
            other = ChainLedger(open_hq_database(dsn, migrate=False),
                                Rules.from_mapping(rules_data()), CARD_KEY,
                                trust=TrustPolicy.load(trust))
            stopping = threading.Event()
            threading.Thread(target=lambda: (halt.wait(), stopping.set()), daemon=True).start()
            results.put(holds_in_process(other, members, stopping))
            other.close()

        child = context.Process(target=apart)
        child.start()
        timer = threading.Thread(target=lambda: (stop.wait(), halt.set(),
                                                 busy.extend(results.get()), child.join()))
    else:
        timer = threading.Thread(target=lambda: busy.extend(
            holds_in_process(ledger, members, stop)))
    timer.start()
    try:
        for first in range(0, len(queue), BATCH):
            chunk = queue[first:first + BATCH]
            for item in chunk:
                if item.hold is not None:
                    assert ledger.holding[0].call(ledger.answer, item.hold, "S001", "T01").ok
            batch = [Event.from_json(item.payload) for item in chunk]
            began, cpu_began = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            outcomes = ledger.thread.call(ledger.apply, batch)
            if profiler is not None:
                profiler.disable()
            took += time.perf_counter() - began
            cpu += time.process_time() - cpu_began
            applied += sum(outcome.ack for outcome in outcomes)
    finally:
        stop.set()
        timer.join()
        ledger.close()
    print(f"in-process: {applied} of {len(queue)} events acked in {took:.1f} s: "
          f"{applied / took:.0f} events/s; this process's CPU {cpu * 1e6 / applied:.0f} us an "
          f"event")
    where = "another process" if holds_apart else "the same process"
    print(f"    hold in {where} (ChainLedger.answer on its thread), ms p50 / p99: "
          f"idle {pct(idle, 0.5):.1f} / {pct(idle, 0.99):.1f}, beside the batches "
          f"{pct(busy, 0.5):.1f} / {pct(busy, 0.99):.1f} ({len(busy)} holds)")
    if profiler is not None:
        profiler.dump_stats(profile)
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(40)


def holds_in_process(ledger: Any, members: int, stop: threading.Event,
                     rounds: int | None = None) -> list[float]:
    """Hold round trips (seconds) answered by ``ledger`` in this process, every 20 ms, each
    voided after: ``rounds`` of them, or until ``stop``."""
    rng, took = random.Random(98), []
    while not stop.is_set() and (rounds is None or len(took) < rounds):
        hold = MemberRequest("hold", card_hash(rng.randrange(members)), 500, str(uuid.uuid4()))
        began = time.perf_counter()
        thread = ledger.request_thread(hold)
        assert thread.call(ledger.answer, hold, "S099", "T01").ok
        took.append(time.perf_counter() - began)
        thread.call(ledger.answer, MemberRequest("void", None, None, hold.hold_id), "S099", "T01")
        stop.wait(0.02)
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report_ab(args: argparse.Namespace, rates: list[float], shares: list[float],
              limit: float, live: list[float]) -> None:
    one, two = rates
    print(f"mix of {args.events} events, {args.members} members, {TILLS} tills, "
          f"batch {BATCH}, member requests {args.member_requests}; (b) timed "
          + ("from a backlog in the broker (the collectors' ingest stopped while the tills "
             "published)" if args.member_requests == "apart" else "live") + ":")
    print(f"(a) psycopg writing the rows:        {limit:8.0f} events/s (the median of "
          f"{args.limit_runs})")
    # The targets' ratios to three places and judged here: at two, 0.495 printed as 0.50.
    print(f"(b1) one collector:                  {one:8.0f} events/s  ratio to (a) "
          f"{one / limit:.3f} (target >= 0.50: {verdict(one / limit >= 0.5)}); lock waits "
          f"{shares[0]:.1%} of batch time")
    print(f"(b2) two collectors:                 {two:8.0f} events/s  ratio to (a) "
          f"{two / limit:.3f}, to one {two / one:.3f} (target >= 1.00: "
          f"{verdict(two / one >= 1.0)}); lock waits {shares[1]:.1%} (target < 5%: "
          f"{verdict(shares[1] < 0.05)})")
    print(f"     live, the tills publishing meanwhile (the figure before session 11): one "
          f"{live[0]:.0f} ({live[0] / limit:.2f} of (a)), two {live[1]:.0f} "
          f"({live[1] / live[0]:.2f}x one)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--idle", type=int, default=300, help="idle round trips")
    parser.add_argument("--chain-scale", type=int, metavar="MEMBERS",
                        help="instead: lookups, statements and the sweep at MEMBERS members "
                             "with 10 entries each (the issue's 1,000,000)")
    parser.add_argument("--sweep-workers", type=int, default=SWEEP_WORKERS,
                        help="with --chain-scale: the sweep's connections (posterm-hq expire "
                             "--workers)")
    parser.add_argument("--parts", default="abc", help="which of (a)/(b) and (c) to run: "
                        "abc (all), ab or c")
    parser.add_argument("--member-requests", choices=("here", "apart"), default="apart",
                        help="the collectors' --member-requests (default: the systemd unit's)")
    parser.add_argument("--ingest-nice", type=int,
                        help="the collectors' --ingest-nice (default: their own default)")
    parser.add_argument("--in-process", action="store_true",
                        help="instead: the mix applied by one ChainLedger in this process "
                             "(no broker): the apply path's own rate")
    parser.add_argument("--profile", type=Path, help="with --in-process: cProfile to this file")
    parser.add_argument("--holds-apart", action="store_true",
                        help="with --in-process: the holds timed from another process")
    parser.add_argument("--holds", choices=("loop", "threads"),
                        help="(c): the collectors' --holds (default: their own default)")
    parser.add_argument("--tills-nice", type=int, default=0, choices=range(20), metavar="0-19",
                        help="(c): the backlog's tills (other machines in a chain) at this "
                             "niceness, the measuring till, broker and PostgreSQL not (default "
                             "0: all at the same priority, the figures before session 14)")
    parser.add_argument("--c-backlog", choices=("broker", "live"), default="broker",
                        help="(c)'s backlog: in the broker before the clock starts (default), "
                             "or published by the ten tills meanwhile (before session 17)")
    parser.add_argument("--c-backlog-holds", action="store_true",
                        help="with --c-backlog broker: the backlog's redemptions ask HQ for "
                             "holds while the tills publish (default: offline redemptions)")
    parser.add_argument("--batch-ms", type=int,
                        help="the collectors' --batch-ms (default: their own default; with "
                             "--in-process: one transaction a batch unless given)")
    parser.add_argument("--backlog-queue", type=int, metavar="N",
                        help="(b)'s backlog broker's max_queued_messages (default: twice "
                             "--events; the shipped config's 1000 drops most of a backlog)")
    parser.add_argument("--limit-runs", type=int, default=LIMIT_RUNS,
                        help="(a)'s runs, each on a fresh database; (a) is their median "
                             f"(default {LIMIT_RUNS})")
    parser.add_argument("--switch-interval", type=float,
                        help="with --in-process: sys.setswitchinterval (seconds) first")
    args = parser.parse_args()
    if args.limit_runs < 1:
        parser.error("--limit-runs: at least 1")
    if "c" in args.parts and args.c_backlog == "broker" and args.member_requests != "apart":
        parser.error("--c-backlog broker stops the ingest process: it needs --member-requests "
                     "apart (use --c-backlog live with here)")
    postgres = Postgres()
    postgres.start()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.in_process:
        try:
            in_process(postgres, args.events, args.members, args.profile, args.holds_apart,
                       args.batch_ms)
        finally:
            postgres.stop()
        return 0
    if args.chain_scale:
        try:
            chain_scale(postgres, args.chain_scale, 10, args.sweep_workers)
        finally:
            postgres.stop()
        return 0
    try:
        with tls_broker("bench-ingest-") as (mq, ca, directory):
            rates, shares, live = [], [], []
            for count in (1, 2) if "b" in args.parts else ():
                dsn = new_database(postgres, args.members)
                print(f"    (b{count}) {count} collector(s), 1-minute load "
                      f"{os.getloadavg()[0]:.1f}:")
                rows = None
                if args.member_requests == "apart":  # timed from a backlog
                    tills = mix(args.events, args.members, count, f"b{count}")
                    with backlog_broker(ca, directory, args.backlog_queue or 2 * args.events
                                        ) as queueing, collectors(
                            count, dsn, queueing, ca, directory, args.member_requests,
                            args.ingest_nice, args.batch_ms) as running:
                        resumed: list[float] = []
                        postmaster = postgres.process.pid if postgres.process else None
                        with LockSampler(dsn) as locks:
                            rates.append(asyncio.run(publish(
                                queueing, ca, tills, stopping(running, resumed, postmaster))))
                        server = (server_cpu(postmaster) - resumed.pop()
                                  if postmaster is not None else 0.0)
                        pids = [pid for group in running for pid in group]
                        spent = [cpu_seconds(pid) - before
                                 for pid, before in zip(pids, resumed, strict=True)]
                        used = sum(spent)
                        ingest = sum(spent[pids.index(group[0])] for group in running)
                        print(f"      ingest processes' CPU from the resume: {used:.2f} s, "
                              f"{used * 1e3 / args.events:.2f} ms an event (the ingest "
                              f"processes {ingest * 1e3 / args.events:.2f}, their event readers "
                              f"{(used - ingest) * 1e3 / args.events:.2f}); PostgreSQL's "
                              f"{server * 1e3 / args.events:.2f} ms an event; the broker dropped "
                              f"{dropped(queueing)} times")
                    shares.append(locks.share)
                    print(f"      ingest connections' states sampled every 10 ms: {locks.states}")
                    # The rows (a) writes: the backlog's, before the live run adds more.
                    rows = added_rows(dsn, args.members) if count == 1 else None
                # Live, on the shipped broker config (max_queued_messages 1,000), as before
                # session 11: the tills publishing while the collectors take their events.
                tills = mix(args.events, args.members, count + 10, f"l{count}")
                drops_before = dropped(mq)
                with collectors(count, dsn, mq, ca, directory, args.member_requests,
                                args.ingest_nice, args.batch_ms) as running:
                    began = [cpu_seconds(pid) for pids in running for pid in pids]
                    with LockSampler(dsn) as live_locks:
                        live.append(asyncio.run(publish(mq, ca, tills)))
                    used = sum(cpu_seconds(pid) for pids in running for pid in pids) - sum(began)
                print(f"      live (the tills publishing meanwhile): {live[-1]:.0f} events/s; "
                      f"ingest processes' CPU {used * 1e3 / args.events:.2f} ms an event; "
                      f"lock waits {live_locks.share:.1%}; the broker dropped messages for a "
                      f"collector {dropped(mq) - drops_before} times")
                if args.member_requests != "apart":
                    rates.append(live[-1])
                    shares.append(live_locks.share)
                if count == 1:
                    tables = rows if rows is not None else added_rows(dsn, args.members)
            if "b" in args.parts:
                report_ab(args, rates, shares, median_limit(
                    postgres, args.members, tables, args.events, args.limit_runs), live)
            if "c" not in args.parts:
                return 0
            dsn = new_database(postgres, args.members)
            from_broker = args.c_backlog == "broker"
            # After an outage the tills redeemed within the offline allowance: a hold HQ
            # granted for a sale still queued behind 100,000 events would time out (hold_ttl,
            # 2 minutes) and be voided by the member-request process meanwhile, work a real
            # outage does not leave (--c-backlog-holds asks them anyway).
            backlog = mix(args.backlog, args.members, 3, "c",
                          offline=from_broker and not args.c_backlog_holds)
            with ExitStack() as stack:
                broker = stack.enter_context(backlog_broker(
                    ca, directory, 2 * args.backlog)) if from_broker else mq
                running = stack.enter_context(collectors(
                    1, dsn, broker, ca, directory, args.member_requests, args.ingest_nice,
                    args.batch_ms, args.holds))
                idle = TillApart(broker, ca, args.members, args.idle).result()
                # What a hold's connection waits on while in a transaction: a lock (a batch
                # holding its member) or nothing (the CPU, the network).
                with LockSampler(dsn, "posterm-hq-holds%") as holding:
                    rate, *busy = (
                        draining_backlog(broker, ca, args.members, backlog, running)
                        if from_broker else
                        under_backlog(broker, ca, args.members, backlog, args.tills_nice))
            holds_on = ((", the backlog in the broker first, its redemptions "
                         + ("with holds" if args.c_backlog_holds else "offline"))
                        if from_broker
                        else ", the backlog's tills publishing meanwhile")
            holds_on += f", holds on {args.holds}" if args.holds else ""
            if args.tills_nice:
                holds_on += f", the backlog's tills at nice {args.tills_nice}"
            print(f"(c) member requests {args.member_requests}{holds_on}; a till's round trips, "
                  f"ms (p50 / p99), {len(busy[1])} holds under a "
                  f"backlog of {args.backlog} events ingested at {rate:.0f} events/s, "
                  f"{len(idle[1])} idle:")
            for name, n in (("lookup", 0), ("hold", 1), ("void", 2)):
                p99, p99_idle = pct(busy[n], 0.99), pct(idle[n], 0.99)
                print(f"    {name:7s} backlog {pct(busy[n], 0.5):6.1f} / {p99:6.1f}   idle "
                      f"{pct(idle[n], 0.5):6.1f} / {p99_idle:6.1f}   p99 ratio "
                      f"{p99 / p99_idle:.2f}" + (
                          f"  (target p99 <= 50 ms: {verdict(p99 <= 50)}, and <= 3x idle: "
                          f"{verdict(p99 <= 3 * p99_idle)})" if name == "hold" else ""))
            print(f"    median hold under backlog {statistics.median(busy[1]) * 1000:.1f} ms; "
                  f"hold connections inside a transaction in {holding.busy} samples of 10 ms, "
                  f"waiting for a lock in {holding.waiting} ({holding.share:.1%}: "
                  f"{holding.kinds})")
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
