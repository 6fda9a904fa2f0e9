"""Sync benchmark: the terminal's outbox drain with HQ acks against raw paho QoS 1.

(a) raw: paho (its own network thread) publishes N event payloads at QoS 1 to a Mosquitto started
    here, and waits for every PUBACK. This is the machine's limit for the same bytes and broker.
(b) drain: a terminal ledger holding N unacknowledged outbox rows; the real OutboxPublisher on the
    asyncio loop publishes them while an HQ stand-in acks each batch as it arrives (no ledger
    work), and the publisher marks the rows acked in SQLite (synchronous=FULL). The clock stops
    when the publisher reports the backlog drained (its last ack batch committed; the table is
    checked after), not by polling the table, which cost the ledger thread a count every 10 ms.
    Target: at least half the raw rate. The stand-in runs in its own process, as HQ does in the
    field: on one loop with the terminal, its receiving of every event cost more CPU than the
    terminal's publishing (profiled), so the ratio measured it.
HQ ingest has its own benchmark, bench/bench_ingest.py (real collector processes).

Also this process's CPU per event on each side, which a busy shared machine disturbs less than the
rates.

Run: .venv/bin/python bench/bench_sync.py [events]   (default 10000)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' broker and PKI support

from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.models import Outbox
from terminal.loyalty.store.outbox import backlog_size
from terminal.protocol.messages import Ack
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig, TlsFiles
from terminal.protocol.topics import Topics
from terminal.sync.outbox import OutboxPublisher
from tests.support.mosquitto import BrokerTls, Mosquitto
from tests.support.pki import CertificateAuthority
from tests.sync.harness import CARD_KEY, rules_data

T = Topics()
WINDOW = 500  # the outbox's default window


def event(n: int) -> dict:
    return {"id": str(uuid.uuid4()), "kind": "sale", "store": "S001", "terminal": "T01",
            "seq": n, "epoch": 1, "wall_time": datetime.now(UTC).isoformat(),
            "time_trusted": True, "body": {
                "sale": f"bench-{uuid.uuid4().hex[:12]}", "member": None, "card_hash": None,
                "tender": "cash", "redeem_points": 0, "online": True,
                "lines": [{"sku": "SKU1", "name": "item", "category": "", "qty": 1,
                           "price_fen": 1200, "paid_fen": 1200}],
                "list_fen": 1200, "discount_fen": 0, "deduction_fen": 0, "paid_fen": 1200,
                "points_earned": 0, "operator": "bench"}}


def payloads(count: int) -> list[bytes]:
    return [json.dumps(event(n), sort_keys=True).encode() for n in range(1, count + 1)]


def raw_paho(broker: Mosquitto, tls: TlsFiles, items: list[bytes]) -> tuple[float, float]:
    """Events per second, and this process's CPU seconds per event (paho's thread included)."""
    done = threading.Event()
    acked = 0

    def on_publish(client, userdata, mid, reason, properties) -> None:
        nonlocal acked
        acked += 1
        if acked == len(items):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw",
                         protocol=paho.MQTTv5)
    client.tls_set_context(tls.context())
    client.max_inflight_messages_set(100)
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = T.events("S001", "T01")
    start, cpu = time.perf_counter(), time.process_time()
    for item in items:
        client.publish(topic, item, qos=1)
    done.wait(120)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    client.disconnect()
    client.loop_stop()
    return len(items) / elapsed, cpu / len(items)


def fill_outbox(store: LedgerStore, items: list[bytes]) -> None:
    with store.db.atomic("IMMEDIATE"):
        rows = [{"id": json.loads(p)["id"], "seq": n, "epoch": 1, "kind": "sale",
                 "payload": p.decode(), "created_us": 0, "trusted": True}
                for n, p in enumerate(items, 1)]
        for start in range(0, len(rows), 500):
            Outbox.insert_many(rows[start:start + 500]).execute()


def config(broker: Mosquitto, tls: TlsFiles, client_id: str) -> MqttConfig:
    return MqttConfig(broker.host, broker.port, client_id, tls=tls, backoff_initial=0.05)


async def acker(tls: TlsFiles, host: str, port: int) -> None:
    """HQ's stand-in, in its own process as HQ is in the field: acks what has arrived, in
    batches, as HQ does after a commit (no ledger work). Says "ready" once subscribed."""
    hq = MqttClient(MqttConfig(host, port, "bench-acker", tls=tls, backoff_initial=0.05))
    pending: list[str] = []

    def on_event(message: Message) -> None:
        pending.append(json.loads(message.payload)["id"])

    await hq.subscribe(T.all_terminals("events", shared=False), on_event)
    await hq.start()
    await hq.wait_ready(10)
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.ensure_future(reader.read())  # the parent closes stdin when it is done
    while not stop.done():
        await asyncio.sleep(0.002)
        if pending:
            ids, pending[:] = tuple(pending), []
            await hq.publish(T.acks("S001", "T01"), Ack(ids, datetime.now(UTC)).to_json())
    await hq.stop()


def start_acker(broker: Mosquitto, tls: TlsFiles) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--acker", broker.host, str(broker.port), str(tls.ca),
         str(tls.cert), str(tls.key)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the acker process did not start")
    return process


async def drain(broker: Mosquitto, ca: CertificateAuthority, directory: Path,
                items: list[bytes], rules: Rules) -> tuple[float, float]:
    store = LedgerStore.open(directory / "term.db", rules, CARD_KEY, Identity("S001", "T01"))
    ledger = LedgerThread(store.db)  # the daemon's composition root makes it the same way
    await ledger.run(fill_outbox, store, items)
    terminal = MqttClient(config(broker, files(ca, "S001/T01"), "S001-T01"))
    hq = start_acker(broker, files(ca, "hq"))
    drained = asyncio.Event()
    publisher = OutboxPublisher(terminal, ledger, store, T.events("S001", "T01"),
                                on_drained=drained.set)
    await terminal.subscribe(T.acks("S001", "T01"), publisher.handle_ack)
    terminal.on_ready(publisher.wake)
    await terminal.start()
    await terminal.wait_ready(10)
    await publisher.start()
    start, cpu = time.perf_counter(), time.process_time()
    publisher.set_hq_online(True)
    await asyncio.wait_for(drained.wait(), 120)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if left := await ledger.run(backlog_size):
        raise RuntimeError(f"the publisher said drained with {left} events unacked")
    assert hq.stdin is not None
    hq.stdin.close()
    hq.wait(10)
    await publisher.stop()
    await terminal.stop()
    ledger.close()
    store.close()
    return len(items) / elapsed, cpu / len(items)


_FILES: dict[str, TlsFiles] = {}


def files(ca: CertificateAuthority, cn: str) -> TlsFiles:
    if cn not in _FILES:
        issued = ca.client(cn)
        _FILES[cn] = TlsFiles(ca.ca_file, issued.cert, issued.key)
    return _FILES[cn]


@contextmanager
def tls_broker(prefix: str) -> Iterator[tuple[Mosquitto, CertificateAuthority, Path]]:
    """A CA and a TLS Mosquitto with the shipped config in a temporary directory, for one run."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        directory = Path(tmp)
        ca = CertificateAuthority(directory / "pki")
        server = ca.server()
        with Mosquitto(directory / "broker", BrokerTls(ca.ca_file, server.cert, server.key)) as mq:
            yield mq, ca, directory


def main() -> int:
    if sys.argv[1:2] == ["--acker"]:
        host, port, ca_file, cert, key = sys.argv[2:7]
        asyncio.run(acker(TlsFiles(Path(ca_file), Path(cert), Path(key)), host, int(port)))
        return 0
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rules = Rules.from_mapping(rules_data())
    with tls_broker("bench-sync-") as (mq, ca, directory):
        raw, raw_cpu = raw_paho(mq, files(ca, "S001/T01"), payloads(count))
        print(f"(a) raw paho QoS 1:             {raw:9.0f} events/s")
        drained, cpu = asyncio.run(drain(mq, ca, directory, payloads(count), rules))
        print(f"(b) outbox drain with HQ acks:  {drained:9.0f} events/s  "
              f"ratio {drained / raw:.2f} (target >= 0.50)")
        # On a shared machine the rates follow the neighbours; CPU per event follows the code.
        print(f"CPU per event, this process:    drain {cpu * 1e6:.0f} us, raw paho "
              f"{raw_cpu * 1e6:.0f} us (raw/drain {raw_cpu / cpu:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
