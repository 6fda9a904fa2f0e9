"""The statements a sale runs, below the ORM.

Measured here (bench/bench_ledger.py, /tmp micro-benchmark in the closing note of issue 2):
a Peewee ``insert().execute()`` costs about 60 us and a ``get_or_none`` about 120 us, against
3-4 us for the same statement through ``execute_sql``; a sale runs about fifteen of them, so the
ORM alone cost more than the fsync that makes the sale durable. Schema, migrations and the rare
paths stay on the models. Statements are written with ``?`` and adapted to the database's
parameter style once, so HQ can run the same store on PostgreSQL. What the sale path reads comes
back as plain records (:class:`MemberRow`, :class:`DayCounts`), not models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from peewee import Database

from terminal.loyalty.store.database import LedgerDatabase


@dataclass(slots=True)
class MemberRow:
    """A ``member`` row as the sale path reads and updates it: a plain record, where a Peewee
    model built per read cost about 7 us. Values are as SQLite stores them (0/1 for booleans)."""

    id: str
    card_hash: str
    card_last4: str
    name: str
    phone_hash: str | None
    phone_last4: str
    birthday: str | None
    referrer_id: str | None
    referral_paid: int
    registered_us: int
    tier: str
    tier_reviewed_us: int | None
    balance: int
    debt: int


@dataclass(frozen=True, slots=True)
class DayCounts:
    """A member's counters for one day (``member_day``), zeros before their first."""

    earned: int = 0
    redeemed: int = 0
    offline_redeemed: int = 0


MEMBER_COLUMNS = tuple(field.name for field in fields(MemberRow))

INSERT_MEMBER = (
    f"INSERT INTO member ({', '.join(MEMBER_COLUMNS)}) "
    f"VALUES ({', '.join(['?'] * len(MEMBER_COLUMNS))})"
)
INSERT_AUDIT = (
    "INSERT INTO audit (seq, wall_us, trusted, actor, action, subject, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
MEMBER_BY_HASH = f"SELECT {', '.join(MEMBER_COLUMNS)} FROM member WHERE card_hash = ?"
META_COUNTERS = (
    "SELECT key, value FROM meta WHERE key IN ('seq', 'trusted_floor_us', 'undated_lots')"
)
GET_META = "SELECT value FROM meta WHERE key = ?"
SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
SALE_EXISTS = "SELECT 1 FROM sale WHERE id = ?"
# A sale's member with the day's counters (NULLs when the member has none yet): one query.
MEMBER_TODAY_BY_HASH = (
    f"SELECT {', '.join('m.' + c for c in MEMBER_COLUMNS)}, d.earned, d.redeemed, "
    "d.offline_redeemed FROM member m LEFT JOIN member_day d ON d.member_id = m.id "
    "AND d.day = ? WHERE m.card_hash = ?"
)
DAY_COUNTS = (
    "SELECT earned, redeemed, offline_redeemed FROM member_day WHERE member_id = ? AND day = ?"
)
COUNT_DAY = (
    "INSERT INTO member_day (member_id, day, earned, redeemed, offline_redeemed) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id, day) DO UPDATE SET "
    "earned = member_day.earned + excluded.earned, "
    "redeemed = member_day.redeemed + excluded.redeemed, "
    "offline_redeemed = member_day.offline_redeemed + excluded.offline_redeemed"
)
SAVE_BALANCE = "UPDATE member SET balance = ?, debt = ? WHERE id = ?"
INSERT_ENTRY = (
    "INSERT INTO ledger_entry (id, seq, member_id, kind, points, debt_delta, sale_id, reverses, "
    "reason, operator, wall_us, trusted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_LOT = (
    "INSERT INTO lot (id, member_id, earned_us, expires_us, points, remaining, dated_trusted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ALLOCATION = "INSERT INTO allocation (entry_id, lot_id, points) VALUES (?, ?, ?)"
MOVE_LOT = "UPDATE lot SET remaining = remaining + ? WHERE id = ?"
INSERT_SALE = (
    "INSERT INTO sale (id, seq, member_id, wall_us, trusted, tender, list_fen, discount_fen, "
    "deduction_fen, paid_fen, points_earned, points_redeemed, earn_entry, redeem_entry, tier, "
    "operator, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SALE_LINE = (
    "INSERT INTO sale_line (sale_id, line_no, sku, name, category, qty, price_fen, list_fen, "
    "paid_fen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (id, seq, epoch, kind, payload, created_us, trusted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Qualifying spend: what the member's sales in the window paid, less what was refunded of them.
# Refunds count only once made: a review sees the spend as it stood at its own instant.
SPEND = (
    "SELECT COALESCE(SUM(paid_fen), 0) - COALESCE((SELECT SUM(r.refunded_fen) FROM refund r "
    "JOIN sale s ON s.id = r.sale_id WHERE s.member_id = ? AND s.wall_us > ? "
    "AND s.wall_us <= ? AND r.wall_us <= ?), 0) FROM sale WHERE member_id = ? AND wall_us > ? "
    "AND wall_us <= ?"
)
# The member's sales after an instant, in the order recorded: upgrades a review applied late
# must keep, each reckoned on the spend as it stood when that sale was recorded (the sales and
# refunds recorded before it: SPEND_AT_SALE).
SALES_AFTER = "SELECT wall_us, seq FROM sale WHERE member_id = ? AND wall_us > ? ORDER BY seq"
SPEND_AT_SALE = (
    "SELECT COALESCE(SUM(paid_fen), 0) - COALESCE((SELECT SUM(r.refunded_fen) FROM refund r "
    "JOIN sale s ON s.id = r.sale_id WHERE s.member_id = ? AND s.wall_us > ? "
    "AND s.wall_us <= ? AND s.seq <= ? AND r.wall_us <= ? AND r.seq < ?), 0) FROM sale "
    "WHERE member_id = ? AND wall_us > ? AND wall_us <= ? AND seq <= ?"
)
# In a total order that every copy of a ledger shares: expiry, then the sequence number of the
# entry that earned the lot (a lot's id is that entry's). Row order or random ids would make the
# sweep's entries differ between two databases holding the same events. The sweep's, and one
# member's before any operation for them.
DUE_LOTS = (
    "SELECT l.id, l.member_id, l.remaining FROM lot l JOIN ledger_entry e ON e.id = l.id "
    "WHERE l.remaining > 0 AND l.expires_us <= ? ORDER BY l.expires_us, e.seq LIMIT ?"
)
DUE_LOTS_OF_MEMBER = (
    "SELECT l.id, l.member_id, l.remaining FROM lot l JOIN ledger_entry e ON e.id = l.id "
    "WHERE l.member_id = ? AND l.remaining > 0 AND l.expires_us <= ? ORDER BY l.expires_us, e.seq"
)
# What a lot earned on an untrusted clock will expire is only known once trusted time has
# re-dated it (LedgerCore._date_lots, at the next trusted write): a trusted moment counts it as
# re-dated then, so not yet due (the second parameter: whether such lots may count).
DUE_POINTS_OF_MEMBER = (
    "SELECT SUM(remaining) FROM lot WHERE member_id = ? AND remaining > 0 AND expires_us <= ? "
    "AND (dated_trusted OR ?)"
)
# A member's lots with points left or owed (an account: Accounts._account), each with the sequence
# number of the entry that earned it (its credit order among lots expiring together).
OPEN_LOTS = (
    "SELECT l.id, l.earned_us, l.expires_us, l.points, l.remaining, e.seq FROM lot l "
    "JOIN ledger_entry e ON e.id = l.id WHERE l.member_id = ? AND l.remaining <> 0"
)
# A refund's reads and writes (store/refunds.py): on HQ a batch reads them for all its refunds
# at once and answers these from memory (terminal.hq.kept); a refund through the ORM read one
# statement at a time, each a round trip waiting for every write before it.
MEMBER_BY_ID = f"SELECT {', '.join(MEMBER_COLUMNS)} FROM member WHERE id = ?"
REFUND_EXISTS = "SELECT 1 FROM refund WHERE id = ?"
SALE_TO_REFUND = (
    "SELECT id, member_id, wall_us, paid_fen, list_fen, points_earned, points_redeemed, "
    "earn_entry, redeem_entry FROM sale WHERE id = ?"
)
SALE_LINES_TO_REFUND = (
    "SELECT line_no, sku, qty, paid_fen FROM sale_line WHERE sale_id = ? ORDER BY line_no"
)
REFUNDS_OF_SALE = (
    "SELECT seq, refunded_fen, points_reversed, points_restored FROM refund WHERE sale_id = ? "
    "ORDER BY seq"
)
REFUNDED_LINES = (
    "SELECT rl.line_no, SUM(rl.qty), SUM(rl.fen) FROM refund_line rl JOIN refund r "
    "ON r.id = rl.refund_id WHERE r.sale_id = ? GROUP BY rl.line_no ORDER BY rl.line_no"
)
# What a sale's redemption took from each lot, and what refunds gave back (negative: restored).
TAKEN_BY_SALE = (
    "SELECT a.lot_id, a.points FROM allocation a JOIN ledger_entry e ON e.id = a.entry_id "
    "WHERE e.sale_id = ? AND e.kind IN ('redeem', 'restore') ORDER BY e.seq, a.lot_id"
)
# A lot of the member with no points left (OPEN_LOTS' columns): one a refund may give back to.
EMPTIED_LOT = (
    "SELECT l.id, l.earned_us, l.expires_us, l.points, l.remaining, e.seq FROM lot l "
    "JOIN ledger_entry e ON e.id = l.id WHERE l.member_id = ? AND l.id = ? AND l.remaining = 0"
)
INSERT_REFUND = (
    "INSERT INTO refund (id, seq, sale_id, kind, wall_us, trusted, refunded_fen, "
    "points_reversed, points_restored, operator) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_REFUND_LINE = (
    "INSERT INTO refund_line (refund_id, line_no, qty, fen) VALUES (?, ?, ?, ?)"
)
EMPTY_LOT = "UPDATE lot SET remaining = 0 WHERE id = ?"
TAKE_FROM_BALANCE = "UPDATE member SET balance = balance - ? WHERE id = ?"
EXPIRING = (
    "SELECT remaining, expires_us FROM lot WHERE member_id = ? AND remaining > 0 "
    "AND expires_us > ? AND expires_us <= ? ORDER BY expires_us"
)


class Statements:
    """Runs the statements above on one database, in its parameter style.

    On the terminal's SQLite ledger each statement goes to :meth:`LedgerDatabase.execute_plain`
    (the sqlite3 connection, with Peewee's errors and a full disk refused); elsewhere (HQ's
    PostgreSQL) through ``execute_sql``. A subclass that sees every statement (HQ's batches) says
    so with ``META_IN_ONE_STATEMENT = False``.
    """

    META_IN_ONE_STATEMENT = True

    def __init__(self, db: Database) -> None:
        self.db = db
        # A database may run a statement as its own text (HQ's PostgreSQL: hq/database.py).
        self._adapted: dict[str, str] = dict(getattr(db, "statements", {}))
        self._execute: Callable[[str, Sequence[Any]], Any] = (
            db.execute_plain if isinstance(db, LedgerDatabase) else self._execute_sql)

    def _sql(self, sql: str) -> str:
        adapted = self._adapted.get(sql)
        if adapted is None:
            adapted = self._adapted[sql] = sql.replace("?", self.db.param)
        return adapted

    def _execute_sql(self, sql: str, params: Sequence[Any]) -> Any:
        return self.db.execute_sql(self._sql(sql), params)

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.run(sql, params).fetchone()

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        cursor = self.db.cursor()
        cursor.executemany(self._sql(sql), list(rows))

    def set_meta(self, rows: Sequence[tuple[str, str]]) -> None:
        """Upsert meta keys, in one statement where the class allows it."""
        if len(rows) == 1 or not self.META_IN_ONE_STATEMENT or self._sql(SET_META) != \
                SET_META.replace("?", self.db.param):
            for row in rows:
                self.run(SET_META, row)
            return
        sql = _SET_METAS.get(len(rows))
        if sql is None:
            marks = ", ".join(["(?, ?)"] * len(rows))
            sql = _SET_METAS[len(rows)] = SET_META.replace("(?, ?)", marks)
        self.run(sql, [value for row in rows for value in row])

    def member(self, card_hash: str) -> MemberRow | None:
        row = self.one(MEMBER_BY_HASH, (card_hash,))
        return None if row is None else MemberRow(*row)

    def member_today(self, card_hash: str, day: str) -> tuple[MemberRow, DayCounts] | None:
        """The member with the card and their counters for ``day`` (zeros if none yet)."""
        row = self.one(MEMBER_TODAY_BY_HASH, (day, card_hash))
        if row is None:
            return None
        return MemberRow(*row[:_MEMBER_WIDTH]), day_counts(row[_MEMBER_WIDTH:])


_SET_METAS: dict[int, str] = {}  # SET_META for n rows
_MEMBER_WIDTH = len(MEMBER_COLUMNS)


def day_counts(counts: Sequence[Any] | None) -> DayCounts:
    """The counters of a DAY_COUNTS row (or the day part of MEMBER_TODAY_BY_HASH's)."""
    return DayCounts(*counts) if counts and counts[0] is not None else DayCounts()
