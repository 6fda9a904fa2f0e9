"""Publishing the member states of a care campaign's bonus, against the machine's own limit.

A private PostgreSQL server (fsync off, as bench_care.py's) gets ``--members`` members (the rows
bench_care.py's chain writes: member, ledger entry, lot) and a bonus to every one of them
(``adjust_many``, as a campaign grants it: a card state each, set-based). Then:

(a) HQ's member-state publisher (``MemberStatePublisher.publish_pending``, as a collector started
    with ``--keys`` runs it) publishes every state for the tills' catch-up: a page of 200 at a
    time, read (snapshots), signed (Ed25519) and recorded in ``published_state``, with a signed
    notice to a TLS Mosquitto with the shipped configuration at most once a second (before
    session 13 each state was also sent, QoS 1 retained, paho's window of 100 in flight, and
    recorded once every PUBACK was in);
(b) the limit, measured in the same run: the very same signed messages (read back) to the same
    topics of the same broker by a bare client, (b1) one at a time, each awaited to its PUBACK
    (how the publisher sent them before this bench), and (b2) pipelined (1,000 handed to paho at
    once, 100 of them in flight), what the broker and the machine allow;
(c) HQ's side of one till's catch-up of every state (``publish.catch_up``, page after page from
    version 0, as the member-request side answers ``states`` requests);
(d) a publisher's round once every state is published: with nothing pending (the median of
    ``ROUNDS`` rounds, what a collector does every half second) and with one card changed (one
    member's adjustment), against the same round's bare read of that one card's row by its key.

Run: ``.venv/bin/python bench/bench_states.py [--members N]`` (default 100,000: the bonus to a
whole chain's segment; a few minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from peewee import Database  # noqa: E402

from bench.bench_care import KEY, NOW, chain  # noqa: E402
from bench.bench_console import bulk_load  # noqa: E402
from bench.bench_sync import files  # noqa: E402
from terminal.hq.bundles import read_toml  # noqa: E402
from terminal.hq.database import SEQ_BLOCK, open_hq_database, writing  # noqa: E402
from terminal.hq.member_ops import publish  # noqa: E402
from terminal.hq.member_ops.bulk import adjust_many  # noqa: E402
from terminal.hq.member_ops.service import MemberOps  # noqa: E402
from terminal.hq.models import HQ_MODELS  # noqa: E402
from terminal.loyalty.rules import Rules  # noqa: E402
from terminal.loyalty.store.accounts import CardRef  # noqa: E402
from terminal.loyalty.store.binding import bound  # noqa: E402
from terminal.loyalty.store.ledger_thread import LedgerThread  # noqa: E402
from terminal.loyalty.store.models import MODELS  # noqa: E402
from terminal.protocol import bundle  # noqa: E402
from terminal.protocol.mqtt import MqttClient, MqttConfig  # noqa: E402
from terminal.protocol.topics import Topics  # noqa: E402
from tests.support.mosquitto import BrokerTls, Mosquitto  # noqa: E402
from tests.support.pki import CertificateAuthority  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402

CHUNK = 2_000  # members a grant transaction adjusts here (the figure is the publishing's)
WINDOW = 1_000  # (b2): messages handed to paho at once, 100 of them in flight
ROUNDS = 21  # (d): publisher rounds with nothing pending


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    members = args.members
    print(f"bench_states: {members:,} members, load {os.getloadavg()[0]:.1f}, "
          f"{time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
    rules = Rules.from_mapping(read_toml(ROOT.parent / "shared" / "examples" / "rules.toml"))
    server = Postgres()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-states-") as tmp:
            directory = Path(tmp)
            ca = CertificateAuthority(directory / "pki")
            issued = ca.server()
            with Mosquitto(directory / "broker",
                           BrokerTls(ca.ca_file, issued.cert, issued.key)) as broker:
                db = open_hq_database(server.dsn)
                try:
                    granted = grant(db, rules, members)
                    print(f"  {granted:,} card states to publish", flush=True)
                    figures = asyncio.run(measure(db, broker, ca, granted))
                finally:
                    db.close()
    finally:
        server.stop()
    (a, b1, b2, c, pages, idle, one, bare) = figures
    print(f"(a) the publisher: {granted:,} states in {a:.2f} s ({granted / a:,.0f}/s, "
          f"{a / granted * 1000:.2f} ms a state)")
    print(f"(b1) bare, one at a time to its PUBACK: {b1:.2f} s ({granted / b1:,.0f}/s): "
          f"ratio {b1 / a:.3f}")
    print(f"(b2) bare, pipelined (100 in flight): {b2:.2f} s ({granted / b2:,.0f}/s): "
          f"ratio {b2 / a:.3f}")
    print(f"(c) one till's catch-up, HQ's side: {pages:,} pages of up to "
          f"{publish.CATCH_UP_PAGE} in {c:.2f} s ({c / pages * 1000:.1f} ms a page)")
    print(f"(d) a round with nothing pending: {idle * 1000:.2f} ms (median of {ROUNDS}); with "
          f"one card changed: {one * 1000:.2f} ms; one card_state row read by its key: "
          f"{bare * 1000:.3f} ms: ratio {bare / one:.4f}")
    print(f"load {os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    return 0


def grant(db: Database, rules: Rules, members: int) -> int:
    """The chain's members and a bonus to each (a card state each); how many states."""
    bulk_load(db, [step for step in chain(members)
                   if step[0] in ("member", "ledger_entry", "lot")])
    db.execute_sql(f"SELECT setval('hq_seq_block', {members // SEQ_BLOCK + 1}, false)")
    db.execute_sql("VACUUM ANALYZE")
    ops = MemberOps(db, rules, KEY, lambda: NOW + timedelta(days=1))
    cards = [row[0] for row in db.execute_sql("SELECT card_hash FROM member ORDER BY id")]
    started = time.perf_counter()
    for start in range(0, len(cards), CHUNK):
        with bound(db, MODELS + HQ_MODELS), writing(db):
            adjust_many(ops, [CardRef(card) for card in cards[start:start + CHUNK]], 5,
                        actor="bench", reason="care campaign bonus")
    print(f"  the bonus granted in {time.perf_counter() - started:.1f} s", flush=True)
    db.execute_sql("VACUUM ANALYZE")
    return int(db.execute_sql("SELECT count(*) FROM card_state").fetchone()[0])


async def measure(db: Database, broker: Mosquitto, ca: CertificateAuthority,
                  states: int) -> tuple[float, float, float, float, int, float, float, float]:
    topics = Topics()
    root = Ed25519PrivateKey.generate()
    signing = Ed25519PrivateKey.generate()
    delegation = bundle.delegate(root, signing.public_key(), NOW - timedelta(days=30),
                                 NOW + timedelta(days=365)).to_wire()
    thread = LedgerThread(db, name="bench-publisher")
    client = MqttClient(MqttConfig(broker.host, broker.port, "hq-bench",
                                   tls=files(ca, "hq")))
    await client.start()
    try:
        await client.wait_ready(30)
        publisher = publish.MemberStatePublisher(client, thread, topics,
                                                 publish.Signer(signing, delegation))
        started = time.perf_counter()
        sent = await publisher.publish_pending()
        a = time.perf_counter() - started
        assert sent == states, (sent, states)
        print(f"(a) done: {a:.2f} s", flush=True)
        wires = [(topics.member_state(card), payload.encode()) for card, payload in
                 db.execute_sql("SELECT card_hash, payload FROM published_state "
                                "ORDER BY version")]
        started = time.perf_counter()
        for topic, payload in wires:
            await client.publish(topic, payload, qos=1)
        b1 = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(wires), WINDOW):  # paho refuses a queue of 100,000
            await asyncio.gather(*(client.publish_nowait(topic, payload, 1, False)
                                   for topic, payload in wires[start:start + WINDOW]))
        b2 = time.perf_counter() - started
        started, since, pages = time.perf_counter(), 0, 0
        with bound(db, MODELS + HQ_MODELS):
            while True:
                page = publish.catch_up(db, since)
                pages += 1
                since = page.through
                if not page.more:
                    break
        c = time.perf_counter() - started
        held = db.execute_sql("SELECT max(version) FROM card_state").fetchone()[0]
        assert since == held, (since, held)
        idle, one, bare = await rounds(db, publisher)
        return a, b1, b2, c, pages, idle, one, bare
    finally:
        await client.stop()
        thread.close()


async def rounds(db: Database, publisher: publish.MemberStatePublisher
                 ) -> tuple[float, float, float]:
    """(d): a round with nothing pending (median), one with one card changed, and the bare
    read of that card's row."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        assert await publisher.publish_pending() == 0
        times.append(time.perf_counter() - started)
    card = db.execute_sql("SELECT card_hash FROM member ORDER BY id DESC LIMIT 1").fetchone()[0]
    rules = Rules.from_mapping(read_toml(ROOT.parent / "shared" / "examples" / "rules.toml"))
    ops = MemberOps(db, rules, KEY, lambda: NOW + timedelta(days=1))
    with bound(db, MODELS + HQ_MODELS), writing(db):
        adjust_many(ops, [CardRef(card)], 1, actor="bench", reason="one more")
    started = time.perf_counter()
    assert await publisher.publish_pending() == 1
    one = time.perf_counter() - started
    started = time.perf_counter()
    db.execute_sql("SELECT * FROM card_state WHERE card_hash = %s", (card,)).fetchone()
    bare = time.perf_counter() - started
    return sorted(times)[ROUNDS // 2], one, bare


if __name__ == "__main__":
    sys.exit(main())
