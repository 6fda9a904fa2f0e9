"""The write transaction under every ledger operation: the meta counters (sequence, session
epoch, trusted-time floor), the outbox event for HQ and the audit row, written together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import Database, SqliteDatabase, fn

from terminal.loyalty.calendar import lot_expiry
from terminal.loyalty.clock import Moment, from_micros, to_micros
from terminal.loyalty.ids import new_id
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.database import write_transaction
from terminal.loyalty.store.models import Lot

ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")
# json.dumps(payload, ensure_ascii=False, sort_keys=True), its encoder made once.
_EVENT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


@dataclass(frozen=True)
class Identity:
    store: str
    terminal: str


def _greatest(db: Database) -> Any:
    """The two-argument maximum: SQLite's scalar MAX, elsewhere (PostgreSQL at HQ) GREATEST."""
    return fn.MAX if isinstance(db, SqliteDatabase) else fn.GREATEST


@dataclass
class Writer:
    """The state of one write transaction: its moment and the sequence numbers it hands out."""

    moment: Moment
    seq: int
    epoch: int
    undated: bool = False  # a lot was written on an untrusted clock
    us: int = field(init=False)  # the moment's time in microseconds

    def __post_init__(self) -> None:
        self.us = to_micros(self.moment.at)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class LedgerCore:
    """One terminal's ledger database: its meta counters and the write transaction."""

    def __init__(self, db: SqliteDatabase, rules: Rules, card_key: bytes, identity: Identity,
                 outbox: bool = True):
        """``outbox=False`` for a ledger that reports to no one (HQ's chain ledger): operations
        then write no outbox events, which nothing would ever drain."""
        if len(card_key) < 16:
            raise ValueError("the card key must be at least 16 bytes")
        self.db = db
        self.rules = rules
        self.card_key = card_key
        self.identity = identity
        self.outbox = outbox
        # Whether a sale or refund returns the member's view (a till shows it; HQ replaying a
        # till's event reads nothing of it, and it costs four reads a sale).
        self.views = True
        # Whether a sale returns its earning step by step (SaleResult.earned: a till's receipt
        # explains it; HQ replaying a till's sale reads only its points).
        self.explained = True
        self._epoch = 0  # this session's epoch, read once at open
        self._last_micros: tuple[datetime | None, int] = (None, 0)
        self.sql = hotpath.Statements(db)

    def _meta(self, key: str, default: str = "") -> str:
        row = self.sql.one(hotpath.GET_META, (key,))
        return row[0] if row else default

    def _set_meta(self, key: str, value: str) -> None:
        # An upsert rather than REPLACE, so HQ can keep the same ledger on PostgreSQL.
        self.sql.run(hotpath.SET_META, (key, value))

    @property
    def epoch(self) -> int:
        return int(self._meta("epoch", "0"))

    @property
    def floor(self) -> datetime | None:
        value = self._meta("trusted_floor_us")
        return from_micros(int(value)) if value else None

    def _micros(self, at: datetime) -> int:
        """``to_micros(at)``, the last conversion remembered: an operation converts its moment's
        time for the rows, the spend window and the member view."""
        last = self._last_micros
        if last[0] is at:  # datetimes are immutable: the same object, the same value
            return last[1]
        us = to_micros(at)
        self._last_micros = (at, us)
        return us

    @contextmanager
    def _writing(self, moment: Moment) -> Iterator[Writer]:
        with write_transaction(self.db):
            # One read for the three counters every write transaction needs.
            meta = dict(self.sql.run(hotpath.META_COUNTERS).fetchall())
            writer = Writer(moment, int(meta.get("seq", "0")), self._epoch)
            self._last_micros = (moment.at, writer.us)
            changed: dict[str, str] = {}
            if moment.trusted:
                us = writer.us
                if int(meta.get("trusted_floor_us") or 0) < us:
                    changed["trusted_floor_us"] = str(us)
                if meta.get("undated_lots") == "1":
                    self._date_lots(moment.at)
                    changed["undated_lots"] = "0"
            yield writer
            if writer.undated:
                changed["undated_lots"] = "1"
            changed["seq"] = str(writer.seq)
            self.sql.set_meta(list(changed.items()))

    def _date_lots(self, at: datetime) -> None:
        """Lots earned on an untrusted clock were dated at the floor; their true earn time lies
        between the floor and now, so dating them now keeps them from expiring early."""
        expires = lot_expiry(at, self.rules.expiry, self.rules.zone)
        Lot.update(
            expires_us=_greatest(self.db)(Lot.expires_us, to_micros(expires)) if expires else None,
            dated_trusted=True,
        ).where(~Lot.dated_trusted).execute()

    def _event(self, w: Writer, kind: str, body: dict[str, Any]) -> str:
        event_id = new_id()
        if not self.outbox:
            return event_id
        seq = w.next_seq()
        payload = {
            "id": event_id,
            "kind": kind,
            "store": self.identity.store,
            "terminal": self.identity.terminal,
            "seq": seq,
            "epoch": w.epoch,
            "wall_time": w.moment.at.isoformat(),
            "time_trusted": w.moment.trusted,
            "body": body,
        }
        self.sql.run(hotpath.INSERT_OUTBOX, (
            event_id, seq, w.epoch, kind,
            _EVENT_JSON(payload), w.us, w.moment.trusted,
        ))
        return event_id

    def _audit(self, w: Writer, actor: str, action: str, subject: str, detail: str) -> None:
        self.sql.run(hotpath.INSERT_AUDIT, (w.next_seq(), w.us, w.moment.trusted, actor or "",
                                            action, subject, detail))
