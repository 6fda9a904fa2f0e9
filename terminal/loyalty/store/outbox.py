"""The outbox table's queries: the unacked window the publisher reads and the acks it records.

The table (``models.Outbox``) is written in the same transaction as what each event reports
(DESIGN promise 3); :mod:`terminal.sync.outbox` publishes it to HQ.
"""

from __future__ import annotations

from datetime import UTC, datetime

from peewee import Database

from terminal.loyalty.clock import to_micros
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.ledger_store import LedgerStore
from terminal.loyalty.store.models import Outbox

# Below the ORM, with the acked_us index ruled out by a unary plus. Without statistics SQLite's
# planner takes that index for "acked_us IS NULL", and it holds the whole backlog: every window
# read sorted all unacked rows and every ack batch of ten ids or more scanned them all (measured
# with 250k unacked rows: 114 ms a read and 82 ms an ack batch, against 0.6 and 0.7 ms here).
_UNACKED_AFTER = ("SELECT id, seq, CAST(payload AS BLOB) FROM outbox "
                  "WHERE seq > ? AND +acked_us IS NULL ORDER BY seq LIMIT ?")
_OLDEST_UNACKED = "SELECT min(seq) FROM outbox WHERE acked_us IS NULL"
_MARK_MAX = 500  # ids per UPDATE, under SQLite's bound-parameter limit
# A consent event's address (the member's phone, given for care messages) is what HQ needs of
# it; once HQ has the event the till has no use for the number, so the ack drops it from the
# row, in the same statement (SQLite rewrites the whole row on any UPDATE: no extra cost for
# the other kinds). The rest of the event stays as the till's record.
_ACK = ("UPDATE outbox SET acked_us = ?, payload = CASE kind WHEN 'consent' "
        "THEN json_remove(payload, '$.body.address') ELSE payload END "
        "WHERE id IN ({ids}) AND +acked_us IS NULL")


def unacked_after(db: Database, after_seq: int | None,
                  limit: int) -> list[tuple[str, int, bytes]]:
    """The next ``limit`` unacked rows (id, seq, payload as published) after ``after_seq``;
    None starts at the oldest one, so a rewind costs one pass over the backlog rather than over
    all the acked history."""
    if after_seq is None:
        oldest = db.execute_sql(_OLDEST_UNACKED).fetchone()[0]
        if oldest is None:
            return []
        after_seq = oldest - 1
    return db.execute_sql(_UNACKED_AFTER, (after_seq, limit)).fetchall()


def backlog_size() -> int:
    return Outbox.select().where(Outbox.acked_us.is_null()).count()


def mark_acked(store: LedgerStore, ids: list[str], hq_time: datetime | None) -> int:
    """Mark ``ids`` acked and raise the time floor, in one transaction; returns rows marked."""
    now = to_micros(datetime.now(UTC))
    marked = 0
    with write_transaction(store.db):
        for start in range(0, len(ids), _MARK_MAX):
            chunk = ids[start:start + _MARK_MAX]
            marked += store.db.execute_sql(
                _ACK.format(ids=", ".join("?" * len(chunk))), (now, *chunk)).rowcount
        if hq_time is not None:
            store.observe_trusted_time(hq_time)
    return marked
