"""``posterm-hq collect --member-requests apart`` reads the terminals' events in a process of its
own (terminal/hq/event_reader.py): a burst larger than the broker's queue for one client (the
shipped ``max_queued_messages`` 1,000, 100 more in flight) waits in the collector while its ingest
process is busy, instead of being dropped by the broker; and the collector stops when its reader
dies (systemd then restarts both)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from tests.sync.conftest import run
from tests.sync.harness import until

from .support import HqDatabase, attacker, collector, encode, envelope, record, sale_body
from .test_requests_apart import _children

BURST = 1_500  # past the broker's queue for one client: 1,000 queued and 100 in flight
DROPPED = "Outgoing messages are being dropped for client"


def test_a_burst_past_the_brokers_queue_waits_in_the_reader(tmp_path: Path, pki: Any,
                                                             broker: Any, hq_db: str) -> None:
    """The ingest process is stopped (SIGSTOP, as busy as it can be) while a till publishes
    BURST events, one of them malformed: none is dropped by the broker, each good one is
    applied once and acked once the ingest process goes on, and the malformed one is refused
    without holding up those after it."""
    db = HqDatabase(hq_db)
    events = [envelope("sale", sale_body(f"S001-T01-{n:05d}"), seq=n)
              for n in range(1, BURST + 1)]
    malformed = b'{"id": "not an event"'

    async def scenario(ingest: int) -> None:
        async with attacker(pki, broker) as attack:
            os.kill(ingest, signal.SIGSTOP)
            try:
                for n, event in enumerate(events):
                    await attack.publish(encode(event))
                    if n == BURST // 2:
                        await attack.publish(malformed)
            finally:
                os.kill(ingest, signal.SIGCONT)
            await until(lambda: {e["id"] for e in events} <= attack.acked(), 120)

    with collector(tmp_path, pki, broker, hq_db, "--member-requests", "apart") as hq:
        assert hq.process is not None
        run(scenario(hq.process.pid), timeout=180)
        log = hq.log()
        record("hq-event-reader-burst", log, sales=BURST, inputs=1)
    outcomes = db.outcomes()
    assert set(outcomes) == {e["id"] for e in events}
    assert {outcome for outcome, _ in outcomes.values()} == {"applied"}
    assert DROPPED not in broker.log_text()
    assert "refused a message from S001/T01: malformed event" in log
    assert "Traceback" not in log


def test_the_collector_stops_when_its_event_reader_dies(tmp_path: Path, pki: Any,
                                                        broker: Any) -> None:
    """SIGKILL the event reader: the collector (its ingest and member-request processes) stops
    with an error naming it, for systemd to restart the whole."""

    async def online() -> None:
        async with attacker(pki, broker):
            pass

    with collector(tmp_path, pki, broker, str(tmp_path / "hq.db"),
                   "--member-requests", "apart") as hq:
        assert hq.process is not None
        run(online())
        children = _children(hq.process.pid)
        readers = [pid for pid in children if f"event reader (pid {pid})" in hq.log()]
        assert len(children) == 2 and len(readers) == 1, (children, hq.log()[-2000:])
        os.kill(readers[0], signal.SIGKILL)
        assert hq.process.wait(60) == 1
        log = hq.log()
    assert "the posterm-hq-events process exited (-9)" in log, log[-2000:]

