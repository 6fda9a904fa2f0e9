"""Past one machine: HQ writes a PostgreSQL primary while `posterm-hq report` reads a streaming
hot standby of it (pg_basebackup), on free loopback ports."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import PostgresqlDatabase

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.loyalty.rules import Rules
from tests.hq.test_ingest_batches import till_events
from tests.support.postgres import Postgres, Standby
from tests.sync.harness import CARD_KEY, rules_data

pytestmark = pytest.mark.slow  # two PostgreSQL servers


@pytest.fixture
def primary() -> Iterator[Postgres]:
    with Postgres(replicated=True) as server:
        yield server


def report(url: str, *view: str) -> dict[str, Any]:
    """`posterm-hq report` in its own process, as it runs beside the collectors (in this one it
    would bind the models to its database under the writer's feet)."""
    done = subprocess.run([sys.executable, "-m", "terminal.hq.cli", "report", *view, "--db", url,
                           "--json"], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_reports_read_the_standby_while_hq_writes_the_primary(
        primary: Postgres, tmp_path: Path) -> None:
    name = f"hq_{uuid.uuid4().hex[:8]}"
    admin = PostgresqlDatabase("posterm", host="127.0.0.1", port=primary.port, user="postgres")
    admin.execute_sql(f"CREATE DATABASE {name}")
    admin.close()
    url = f"postgresql://postgres@127.0.0.1:{primary.port}/{name}"
    ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY)
    stores = [f"S{n:03d}" for n in range(1, 5)]
    batches = [till_events(tmp_path, store) for store in stores]
    with Standby(primary) as standby:
        try:
            ledger.thread.call(ledger.apply, batches[0])
            standby.caught_up()
            first = report(standby.url(name))
            assert set(first["stores"]) == {"S001"}

            # The rest is written while reports read the standby: each one a consistent
            # snapshot of some moment of the primary's (whole batches, the chain adding up).
            failed: list[BaseException] = []

            def write() -> None:
                try:
                    for batch in batches[1:]:
                        ledger.thread.call(ledger.apply, batch)
                except BaseException as exc:
                    failed.append(exc)

            writing = threading.Thread(target=write)
            writing.start()
            seen = []
            while writing.is_alive() or not seen:
                during = report(standby.url(name))
                seen.append(set(during["stores"]))
                assert during["chain"]["liability_points"] == sum(
                    row["net_points"] for row in during["stores"].values())
            writing.join()
            assert failed == []

            standby.caught_up()
            assert report(standby.url(name)) == report(url)
            assert set(report(standby.url(name))["stores"]) == set(stores)
            # A report that reads the roll-ups catches them up on the primary; on the standby
            # it reads them as the primary's last catch-up left them (it cannot write).
            points = ("points", "--from", "2020-01-01", "--to", "2030-01-01", "--by", "month")
            on_primary = report(url, *points)
            assert sum(row["chain"]["issued"] for row in on_primary["periods"]) > 0
            standby.caught_up()
            assert report(standby.url(name), *points) == on_primary
            # The standby takes no writes: HQ's writers go to the primary.
            with pytest.raises(Exception, match="read-only"):
                on_standby = ChainLedger(open_hq_database(standby.url(name), migrate=False),
                                         Rules.from_mapping(rules_data()), CARD_KEY)
                try:
                    on_standby.thread.call(on_standby.apply, till_events(tmp_path, "S099"))
                finally:
                    on_standby.close()
        finally:
            ledger.close()
