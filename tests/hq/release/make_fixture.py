"""Made the last release's HQ databases in this folder (run once, on main at d8324e3, before
HQ's schema came under migrations):

    .venv/bin/python -m tests.hq.release.make_fixture

``hq-0.1.db`` is a SQLite HQ database and ``hq-0.1.sql`` a plain ``pg_dump`` of a PostgreSQL one,
both holding two tills' real events (registrations, member and anonymous sales, a redemption with
its hold, a refund, an adjustment), a pending hold and a terminal's status, exactly as that
release's code wrote them. tests/hq/test_upgrade.py upgrades copies of them. Kept for the record:
today's code no longer writes the old schema, so running it again makes a current database.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from terminal.hq.chain_ledger import ChainLedger
from terminal.hq.database import open_hq_database
from terminal.hq.models import HQ_MODELS, MemberHold, TerminalSeen
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import MODELS
from tests.hq.test_ingest_batches import till_events
from tests.hq.test_postgres_collector import fresh_database
from tests.support.postgres import Postgres, _binary
from tests.sync.harness import CARD_KEY, rules_data

HERE = Path(__file__).parent


def fill(url: str, events: list) -> None:
    ledger = ChainLedger(open_hq_database(url), Rules.from_mapping(rules_data()), CARD_KEY)
    try:
        outcomes = ledger.thread.call(ledger.apply, events)
        assert {o.result for o in outcomes} == {"applied"}, outcomes

        def extras() -> None:
            at = to_micros(datetime(2026, 12, 1, 9, tzinfo=UTC))
            MemberHold.create(id="hold-pending-1", card_hash=events[0].body["card_hash"],
                              points=100, state="pending", store="S001", terminal="T01",
                              created_us=at, expires_us=at + 120_000_000)
            TerminalSeen.create(store="S001", terminal="T01", online=True, epoch=3,
                                version="0.1.0", rule_version=1, backlog=0,
                                devices='{"printer": "ok"}', last_seen_us=at)
        with ledger.db.bind_ctx(MODELS + HQ_MODELS):
            ledger.thread.call(extras)
    finally:
        ledger.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        events = till_events(work) + till_events(work, "S002")
        sqlite_path = work / "hq.db"
        fill(str(sqlite_path), events)
        with sqlite3.connect(sqlite_path) as conn:  # fold the WAL in: one self-contained file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        shutil.copy(sqlite_path, HERE / "hq-0.1.db")
        with Postgres() as server:
            url = fresh_database(server)
            fill(url, events)
            dump = subprocess.run([_binary("pg_dump"), "--no-owner", "--no-privileges",
                                   "--no-comments", url], check=True, capture_output=True)
            (HERE / "hq-0.1.sql").write_bytes(dump.stdout)
    print(f"wrote {HERE / 'hq-0.1.db'} and {HERE / 'hq-0.1.sql'} ({len(events)} events)")


if __name__ == "__main__":
    main()
