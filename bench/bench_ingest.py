"""HQ ingest benchmark: `posterm-hq collect` processes applying a terminal's events, acked back.

Every figure runs the real service as it runs in the field: each collector is its own
`posterm-hq collect` process (MQTT 5 shared subscription, batched transactions, each event id
applied once, acks published to the terminal). A terminal stand-in publishes N sale events at
QoS 1, keeping at most WINDOW unacknowledged as the outbox does, and the clock stops when HQ's
ack for the last event arrives.

(a) raw paho QoS 1 publishing the same payloads to the same broker: the machine's limit for the
    bytes alone, measured in this run (bench_sync.raw_paho);
(b) one collector on SQLite; (c) one collector on PostgreSQL; (d) two collectors sharing the
    subscription on one PostgreSQL database (the chain set-up: several collectors, one database).
Each prints its ratio to (a); (d) also prints its ratio to (c): how far a second collector
process scales on this machine (2 cores here: the broker, the database, the stand-in and the
collectors share them).

PostgreSQL runs with fsync=off here, as in the tests (a scratch server): the figures measure the
collector's work, not this disk.

Run: .venv/bin/python bench/bench_ingest.py [events]   (default 10000)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' broker and PKI support

from bench_sync import files, payloads, raw_paho, tls_broker

from terminal.protocol.messages import Ack, HqState
from terminal.protocol.mqtt import Message, MqttClient, MqttConfig
from terminal.protocol.topics import Topics
from tests.support.mosquitto import Mosquitto
from tests.support.pki import CertificateAuthority
from tests.support.postgres import Postgres
from tests.support.shared import EXAMPLES
from tests.sync.harness import CARD_KEY

T = Topics()
WINDOW = 500  # events in flight, as the terminal's outbox keeps them
HQ_CLI = Path(sys.executable).with_name("posterm-hq")


@contextmanager
def collectors(count: int, db: str, broker: Mosquitto, ca: CertificateAuthority,
               directory: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` collector processes on ``db``; their logs end with their outcome counts."""
    tls = files(ca, "hq")
    key = directory / "card.key"
    key.write_bytes(CARD_KEY)
    running = [
        subprocess.Popen(
            [str(HQ_CLI), "collect", "--db", db, "--rules", str(EXAMPLES / "rules.toml"),
             "--card-key-file", str(key), "--host", broker.host, "--port", str(broker.port),
             "--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key),
             "--client-id", f"bench-hq-{n}"],
            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        for n in range(count)
    ]
    try:
        yield running
    finally:
        for process in running:
            process.terminate()
        for n, process in enumerate(running):
            _, log = process.communicate(timeout=30)
            last = [line for line in log.splitlines() if "collector stopped" in line]
            counts = last[-1].split("collector stopped: ")[-1] if last else log[-500:]
            print(f"    collector {n} on {db.split(':')[0]}: {counts}")


async def wait_online(broker: Mosquitto, ca: CertificateAuthority, count: int) -> None:
    """Until each collector has announced HQ online (it subscribes before it announces)."""
    online = 0
    announced = asyncio.Event()

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


async def publish_until_acked(broker: Mosquitto, ca: CertificateAuthority,
                              items: list[bytes]) -> float:
    acked: set[str] = set()
    terminal = MqttClient(MqttConfig(broker.host, broker.port, "S001-T01-bench",
                                     tls=files(ca, "S001/T01")))
    await terminal.subscribe(T.acks("S001", "T01"), lambda m: acked.update(Ack.from_json(
        m.payload).ids))
    await terminal.start()
    await terminal.wait_ready(10)
    topic = T.events("S001", "T01")
    start = time.perf_counter()
    for begin in range(0, len(items), 100):
        while begin - len(acked) > WINDOW:
            await asyncio.sleep(0.002)
        await asyncio.gather(*(terminal.publish(topic, item) for item in items[begin:begin + 100]))
    while len(acked) < len(items):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    await terminal.stop()
    return len(items) / elapsed


def ingest(broker: Mosquitto, ca: CertificateAuthority, directory: Path, db: str,
           count: int, items: list[bytes]) -> float:
    with collectors(count, db, broker, ca, directory):
        asyncio.run(wait_online(broker, ca, count))
        return asyncio.run(publish_until_acked(broker, ca, items))


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tls_broker("bench-ingest-") as (mq, ca, directory):
        raw, _ = raw_paho(mq, files(ca, "S001/T01"), payloads(count))  # (events/s, CPU)
        print(f"(a) raw paho QoS 1:                    {raw:8.0f} events/s")
        sqlite = ingest(mq, ca, directory, str(directory / "hq.db"), 1, payloads(count))
        print(f"(b) one collector, SQLite:             {sqlite:8.0f} events/s  "
              f"ratio to raw {sqlite / raw:.2f}")
        rates = []
        for processes in (1, 2):
            postgres = Postgres()
            postgres.start()
            try:
                rates.append(ingest(mq, ca, directory, postgres.dsn, processes,
                                    payloads(count)))
            finally:
                postgres.stop()
        one, two = rates
        print(f"(c) one collector, PostgreSQL:         {one:8.0f} events/s  "
              f"ratio to raw {one / raw:.2f}")
        print(f"(d) two collectors, one PostgreSQL:    {two:8.0f} events/s  "
              f"ratio to raw {two / raw:.2f}, to one collector {two / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
