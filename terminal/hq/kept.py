"""The rows an ingest batch keeps in memory on PostgreSQL: its members, their day counters, open
lots and qualifying spend, read for the whole batch in a few set-based queries and then moved by
the store's own writes, so replaying an event reads nothing the batch already knows.

Per event the store reads the member and the day's counters, the lots due, the lots of the
account and the spend of the tier window (:mod:`terminal.loyalty.store.hotpath`); each read is a
round trip the pipeline cannot hide (it waits for every write sent before it). Inside a batch the
members it names are locked (database.lock_free_members) and HQ is their only writer, so what it
read at the start changes only by what it writes itself:

* :meth:`Kept.load` reads the members by card hash, their day counters for the batch's days,
  their lots with points left (with the earning entry's sequence number) and their sales and
  refunds in the tier window: five queries for the batch, answered in one wait;
* :meth:`Kept.answer` answers the store's reads from those rows (a member or day not loaded is
  read, alone, then kept);
* :meth:`Kept.track` moves them by each of the store's writes (balances, day counts, new lots,
  lot movements, sales); a write it cannot follow (the ORM's, named by table in
  :meth:`Kept.written`) forgets what it could change, which is read again when asked.

The answers are the rows the same statements would return, in the same order, so the ledger's
rows do not change (SQLite runs the statements themselves: ``test_postgresql_ingest_agrees_with_
sqlite``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from terminal.hq.arrays import array
from terminal.loyalty.store import hotpath

Run = Callable[[str, Sequence[Any]], Any]  # a statement run on the database (its own text)

_COLUMNS = ", ".join(hotpath.MEMBER_COLUMNS)
# The arrays go binary (%b), dumped by terminal.hq.arrays, as the batch's writes do (buffered.py):
# psycopg's text dump of a list searches every element for characters to quote (py-spy of one
# collector, session 11: the text dumps of these reads and of the locks, 4% of its ledger thread).
MEMBERS = f"SELECT {_COLUMNS} FROM member WHERE card_hash = ANY(%b::text[])"
DAYS = ("SELECT member_id, day, earned, redeemed, offline_redeemed FROM member_day "
        "WHERE member_id = ANY(%b::text[]) AND day = ANY(%b::text[])")
LOTS = ("SELECT l.id, l.member_id, l.earned_us, l.expires_us, l.points, l.remaining, "
        "l.dated_trusted, e.seq FROM lot l JOIN ledger_entry e ON e.id = l.id "
        "WHERE l.member_id = ANY(%b::text[]) AND l.remaining <> 0")
SALES = ("SELECT member_id, wall_us, paid_fen FROM sale WHERE member_id = ANY(%b::text[]) "
         "AND wall_us > %s")
REFUNDS = ("SELECT s.member_id, s.wall_us, r.wall_us, r.refunded_fen FROM refund r "
           "JOIN sale s ON s.id = r.sale_id WHERE s.member_id = ANY(%b::text[]) AND s.wall_us > %s")
# A batch's refunds (store/refunds.py's statements, hotpath.REFUND_EXISTS ... EMPTIED_LOT): the
# sales they refund, those sales' lines, refunds before and what their redemptions took, and the
# lots with no points left a refund may give back to; the refund ids already recorded. A refund
# read them one statement at a time, each waiting for the batch's writes: 33 ms a refund
# (cProfile of bench_ingest.py --in-process, 64 refunds in 2.1 s of 9.1).
REFUND_IDS = "SELECT id FROM refund WHERE id = ANY(%b::text[])"
REFUND_SALES = ("SELECT id, member_id, wall_us, paid_fen, list_fen, points_earned, "
                "points_redeemed, earn_entry, redeem_entry FROM sale WHERE id = ANY(%b::text[])")
REFUND_SALE_LINES = ("SELECT sale_id, line_no, sku, qty, paid_fen FROM sale_line "
                     "WHERE sale_id = ANY(%b::text[]) ORDER BY sale_id, line_no")
REFUNDS_BEFORE = ("SELECT sale_id, seq, refunded_fen, points_reversed, points_restored "
                  "FROM refund WHERE sale_id = ANY(%b::text[]) ORDER BY seq")
REFUNDED_BEFORE = ("SELECT r.sale_id, rl.line_no, SUM(rl.qty), SUM(rl.fen) FROM refund_line rl "
                   "JOIN refund r ON r.id = rl.refund_id WHERE r.sale_id = ANY(%b::text[]) "
                   "GROUP BY r.sale_id, rl.line_no ORDER BY r.sale_id, rl.line_no")
_TAKEN_WHERE = "e.sale_id = ANY(%b::text[]) AND e.kind IN ('redeem', 'restore')"
REFUND_TAKEN = ("SELECT e.sale_id, a.lot_id, a.points FROM allocation a JOIN ledger_entry e "
                f"ON e.id = a.entry_id WHERE {_TAKEN_WHERE} ORDER BY e.seq, a.lot_id")
REFUND_EMPTIED = (
    "SELECT l.id, l.member_id, l.earned_us, l.expires_us, l.points, l.remaining, "
    "l.dated_trusted, x.seq FROM lot l JOIN ledger_entry x ON x.id = l.id WHERE l.remaining = 0 "
    "AND l.id IN (SELECT earn_entry FROM sale WHERE id = ANY(%b::text[]) UNION SELECT a.lot_id "
    f"FROM allocation a JOIN ledger_entry e ON e.id = a.entry_id WHERE {_TAKEN_WHERE})")
_SALE_KEYED = (hotpath.SALE_TO_REFUND, hotpath.SALE_LINES_TO_REFUND, hotpath.REFUNDS_OF_SALE,
               hotpath.REFUNDED_LINES, hotpath.TAKEN_BY_SALE)
_ENTRY_SALE = 6  # sale_id in INSERT_ENTRY's parameters
_REFUND_SALE, _REFUND_US, _REFUND_FEN = 2, 4, 6  # in INSERT_REFUND's parameters
# The same of the members with these card hashes: a batch's first reads go out together with
# MEMBERS, before its ids are known, and are answered in one wait (see Kept.load). The ids as an
# array computed first, so each is read by the member's index as above (as "IN (SELECT ...)" the
# counters' query hashed the whole member_day table: 7 ms a batch, pg_stat_statements).
_BY_CARD = "= ANY(ARRAY(SELECT id FROM member WHERE card_hash = ANY(%b::text[])))"
DAYS_BY_CARD, LOTS_BY_CARD, SALES_BY_CARD, REFUNDS_BY_CARD = (
    sql.replace("member_id = ANY(%b::text[])", f"member_id {_BY_CARD}", 1)
    for sql in (DAYS, LOTS, SALES, REFUNDS))

_ID, _CARD = hotpath.MEMBER_COLUMNS.index("id"), hotpath.MEMBER_COLUMNS.index("card_hash")
_BALANCE, _DEBT = hotpath.MEMBER_COLUMNS.index("balance"), hotpath.MEMBER_COLUMNS.index("debt")
# A lot kept: [id, member_id, earned_us, expires_us, points, remaining, dated_trusted, credit_seq]
_REMAINING, _EXPIRES, _TRUSTED, _SEQ = 5, 3, 6, 7
_WRITTEN = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
_PAID = 9  # paid_fen in INSERT_SALE's parameters


class Spend:
    """A member's sales (wall_us, paid_fen) and refunds of them (sale's wall_us, refund's
    wall_us, refunded_fen) after ``since``: the tier window's spend for any window inside."""

    __slots__ = ("refunds", "sales", "since")

    def __init__(self, since: int) -> None:
        self.since = since
        self.sales: list[tuple[int, int]] = []
        self.refunds: list[tuple[int, int, int]] = []

    def within(self, start: int, end: int, refunded_by: int) -> int:
        """SPEND's answer: paid in (start, end], less refunded of those sales by
        ``refunded_by``."""
        paid = sum(fen for wall_us, fen in self.sales if start < wall_us <= end)
        refunded = sum(fen for sale_us, refund_us, fen in self.refunds
                       if start < sale_us <= end and refund_us <= refunded_by)
        return paid - refunded


class Kept:
    """What a batch knows of its members (see the module's doc). Empty between batches."""

    def __init__(self, run: Run) -> None:
        # Every list these reads send is an array of text (``%b::text[]``): dumped here.
        self._run: Run = lambda sql, params: run(sql, [
            array(param, "text") if isinstance(param, list) else param for param in params])
        self.members: dict[str, tuple[Any, ...] | None] = {}  # card hash -> member row
        self._hashes: dict[str, str] = {}  # member id -> card hash, of the rows kept
        self.days: dict[tuple[str, str], list[int] | None] = {}  # (member, day) -> counts
        self.lots: dict[str, dict[str, list[Any]]] = {}  # member id -> lot id -> lot
        self._owners: dict[str, str] = {}  # lot id -> member id, of the lots kept
        self._entries: dict[str, int] = {}  # entry id -> seq, of entries inserted here
        self.spend: dict[str, Spend] = {}  # member id -> sales and refunds since a moment
        self.since: int | None = None  # the earliest window start the batch loads spend from
        # The batch's refunds: refund id -> recorded; sale id -> statement -> its rows (what a
        # write of the batch changes is dropped, read again when asked).
        self.refund_ids: dict[str, bool] = {}
        self.refunded: dict[str, dict[str, list[tuple[Any, ...]]]] = {}

    # -- reading for the batch -----------------------------------------------------------------

    def load(self, card_hashes: Iterable[str], days: Iterable[str], since: int | None,
             refunds: Sequence[str] = (), refund_ids: Sequence[str] = ()) -> None:
        """Read the members with these card hashes and, of those found, their counters for
        ``days``, their open lots and (with ``since``) their sales and refunds after it; with
        ``refunds`` (sale ids), what refunding those sales reads (:meth:`_take_refunds`).

        The five queries are sent together and answered in one wait (in pipeline mode each
        read waits for the server; sent one after another they waited five times, a batch's
        largest fixed cost after its COMMIT: bench_ingest.py --in-process --batch-ms)."""
        self.ask(card_hashes, days, since, refunds, refund_ids)()

    def ask(self, card_hashes: Iterable[str], days: Iterable[str], since: int | None,
            refunds: Sequence[str] = (), refund_ids: Sequence[str] = ()) -> Callable[[], None]:
        """:meth:`load`'s queries sent now (in pipeline mode without waiting), their rows kept
        when the returned function is called: a batch asks with its locks and reads the
        answers in the same wait (ChainLedger._apply_batch)."""
        wanted = sorted(set(card_hashes) - self.members.keys())
        refunding = self._ask_refunds(refunds, refund_ids) if refunds else None
        if not wanted:
            return (lambda: None) if refunding is None else (
                lambda: self._take_refunds(*refunding))
        days = sorted(set(days))
        members = self._run(MEMBERS, (wanted,))
        rest = [self._run(DAYS_BY_CARD, (wanted, days)) if days else None,
                self._run(LOTS_BY_CARD, (wanted,)),
                *((self._run(SALES_BY_CARD, (wanted, since)),
                   self._run(REFUNDS_BY_CARD, (wanted, since))) if since is not None else ())]

        def take() -> None:
            found = members.fetchall()
            self.members.update(dict.fromkeys(wanted))
            for row in found:
                self.members[row[_CARD]] = row
                self._hashes[row[_ID]] = row[_CARD]
            ids = sorted(row[_ID] for row in found)
            answers = [cursor.fetchall() if cursor is not None else [] for cursor in rest]
            if not ids:
                return
            self.since = since
            self._take_days(ids, days, answers[0])
            self._take_lots(ids, answers[1])
            if since is not None:
                self._take_spend(ids, since, answers[2], answers[3])
            if refunding is not None:
                self._take_refunds(*refunding)
        return take

    def _ask_refunds(self, sales: Sequence[str], refund_ids: Sequence[str]) -> tuple[Any, ...]:
        """Send the refunds' reads (answered by :meth:`_take_refunds`, in the same wait)."""
        sales = sorted(set(sales))
        wanted = sorted(set(refund_ids))
        return (sales, wanted, self._run(REFUND_IDS, (wanted,)),
                *(self._run(sql, (sales,)) for sql in (
                    REFUND_SALES, REFUND_SALE_LINES, REFUNDS_BEFORE, REFUNDED_BEFORE,
                    REFUND_TAKEN)),
                self._run(REFUND_EMPTIED, (sales, sales)))

    def _take_refunds(self, sales: list[str], wanted: list[str], *cursors: Any) -> None:
        """Keep the refunds' rows, as each statement of hotpath's would return them for one
        sale, and the lots with no points left among the lots kept."""
        found, *rest, emptied = [cursor.fetchall() for cursor in cursors]
        self.refund_ids.update(dict.fromkeys(wanted, False))
        self.refund_ids.update((refund_id, True) for (refund_id,) in found)
        sale_rows, lines, before, refunded, taken = rest
        for row in sale_rows:
            self.refunded[row[0]] = {sql: [] for sql in _SALE_KEYED}
            self.refunded[row[0]][hotpath.SALE_TO_REFUND].append(tuple(row))
        for rows, sql in ((lines, hotpath.SALE_LINES_TO_REFUND),
                          (before, hotpath.REFUNDS_OF_SALE),
                          (refunded, hotpath.REFUNDED_LINES), (taken, hotpath.TAKEN_BY_SALE)):
            for sale_id, *columns in rows:
                if sale_id in self.refunded:
                    self.refunded[sale_id][sql].append(tuple(columns))
        for row in emptied:
            lots = self.lots.get(row[1])
            if lots is not None and row[0] not in lots:
                lots[row[0]] = list(row)
                self._owners[row[0]] = row[1]

    def _load_days(self, ids: list[str], days: list[str]) -> None:
        if days:
            self._take_days(ids, days, self._run(DAYS, (ids, days)).fetchall())

    def _take_days(self, ids: list[str], days: list[str], rows: list[Any]) -> None:
        self.days.update(dict.fromkeys((member, day) for member in ids for day in days))
        for member, day, *counts in rows:
            self.days[(member, day)] = counts

    def _load_lots(self, ids: list[str]) -> None:
        self._take_lots(ids, self._run(LOTS, (ids,)).fetchall())

    def _take_lots(self, ids: list[str], rows: list[Any]) -> None:
        for member in ids:
            self.lots[member] = {}
        for row in rows:
            self.lots[row[1]][row[0]] = list(row)
            self._owners[row[0]] = row[1]

    def _load_spend(self, ids: list[str], since: int) -> None:
        sales = self._run(SALES, (ids, since))
        refunds = self._run(REFUNDS, (ids, since))
        self._take_spend(ids, since, sales.fetchall(), refunds.fetchall())

    def _take_spend(self, ids: list[str], since: int, sales: list[Any],
                    refunds: list[Any]) -> None:
        for member in ids:
            self.spend[member] = Spend(since)
        for member, wall_us, paid in sales:
            self.spend[member].sales.append((wall_us, paid))
        for member, sale_us, refund_us, fen in refunds:
            self.spend[member].refunds.append((sale_us, refund_us, fen))

    # -- the store's reads ---------------------------------------------------------------------

    def answer(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The rows ``sql`` would return, or None when it must run (any statement not in
        :data:`READS` runs)."""
        found = _ANSWERS.get(sql)
        return None if found is None else found(self, params)

    def _answer_member(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        return self._member(params[0])

    def _answer_member_today(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        return self._member_today(params[1], params[0])

    def _answer_day(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        counts = self._day(params[0], params[1])
        return [tuple(counts)] if counts is not None else []

    def _answer_due_lots(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        lots = self._lots_of(params[0])
        if lots is None:
            return None
        due = sorted((lot for lot in lots.values() if lot[_REMAINING] > 0
                      and lot[_EXPIRES] is not None and lot[_EXPIRES] <= params[1]),
                     key=lambda lot: (lot[_EXPIRES], lot[_SEQ]))
        return [(lot[0], lot[1], lot[_REMAINING]) for lot in due]

    def _answer_due_points(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        lots = self._lots_of(params[0])
        if lots is None:
            return None
        due = [lot[_REMAINING] for lot in lots.values() if lot[_REMAINING] > 0
               and lot[_EXPIRES] is not None and lot[_EXPIRES] <= params[1]
               and (lot[_TRUSTED] or params[2])]
        return [(sum(due) if due else None,)]

    def _answer_open_lots(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        lots = self._lots_of(params[0])
        if lots is None:
            return None
        return [(lot[0], lot[2], lot[3], lot[4], lot[_REMAINING], lot[_SEQ])
                for lot in lots.values() if lot[_REMAINING] != 0]

    def _answer_spend(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        spend = self._spend_of(params[0])
        if spend is None or params[1] < spend.since:
            return None
        return [(spend.within(params[1], params[2], params[3]),)]

    # A refund's reads (store/refunds.py), from :meth:`_take_refunds`' rows.

    def _answer_sale_keyed(self, sql: str, params: Sequence[Any]
                           ) -> list[tuple[Any, ...]] | None:
        rows = self.refunded.get(params[0], {}).get(sql)
        return list(rows) if rows is not None else None

    def _answer_refund_exists(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        recorded = self.refund_ids.get(params[0])
        return None if recorded is None else [(1,)] if recorded else []

    def _answer_member_by_id(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        card_hash = self._hashes.get(params[0])
        row = self.members.get(card_hash) if card_hash is not None else None
        return [row] if row is not None else None

    def _answer_emptied_lot(self, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        lot = self.lots.get(params[0], {}).get(params[1])
        if lot is None:
            return None
        return [(lot[0], lot[2], lot[3], lot[4], lot[_REMAINING], lot[_SEQ])] \
            if lot[_REMAINING] == 0 else []

    def _lots_of(self, member_id: str) -> dict[str, list[Any]] | None:
        """The member's lots kept; forgotten (a write the store's statements did not say, a
        refund restoring an emptied lot), the lots of every member kept are read again at once:
        one query, not one for each member the rest of the batch names."""
        if member_id not in self.lots and member_id in self._hashes:
            self._load_lots(sorted(set(self._hashes) - self.lots.keys()))
        return self.lots.get(member_id)

    def _spend_of(self, member_id: str) -> Spend | None:
        """The member's sales kept; forgotten (a refund recorded), read again for every member
        kept at once."""
        if member_id not in self.spend and member_id in self._hashes and self.since is not None:
            self._load_spend(sorted(set(self._hashes) - self.spend.keys()), self.since)
        return self.spend.get(member_id)

    def _member(self, card_hash: str) -> list[tuple[Any, ...]]:
        if card_hash not in self.members:
            self.load([card_hash], [], self.since)
        row = self.members[card_hash]
        return [row] if row is not None else []

    def _day(self, member_id: str, day: str) -> list[int] | None:
        if (member_id, day) not in self.days:
            self._load_days([member_id], [day])
        return self.days[(member_id, day)]

    def _member_today(self, card_hash: str, day: str) -> list[tuple[Any, ...]]:
        member = self._member(card_hash)
        if not member:
            return []
        counts = self._day(member[0][_ID], day)
        return [(*member[0], *(counts if counts is not None else (None, None, None)))]

    # -- the store's writes --------------------------------------------------------------------

    def track(self, sql: str, params: Sequence[Any]) -> None:
        """Move the rows kept by one of the store's writes (the write itself runs too); any
        statement not in :data:`WRITES` moves nothing."""
        found = _TRACKS.get(sql)
        if found is not None:
            found(self, params)

    def _track_member(self, params: Sequence[Any]) -> None:
        self.members[params[_CARD]] = tuple(params)
        self._hashes[params[_ID]] = params[_CARD]
        self.lots[params[_ID]] = {}  # a new member: no lots, no sales yet
        if self.since is not None:
            self.spend[params[_ID]] = Spend(self.since)

    def _track_balance(self, params: Sequence[Any]) -> None:
        card_hash = self._hashes.get(params[2])
        member = self.members.get(card_hash) if card_hash is not None else None
        if member is not None:
            row = list(member)
            row[_BALANCE], row[_DEBT] = params[0], params[1]
            self.members[card_hash] = tuple(row)  # type: ignore[index]

    def _track_day(self, params: Sequence[Any]) -> None:
        key = (params[0], params[1])
        if key in self.days:
            counts = self.days[key] or [0, 0, 0]
            self.days[key] = [n + int(d) for n, d in zip(counts, params[2:5], strict=True)]

    def _track_entry(self, params: Sequence[Any]) -> None:
        self._entries[params[0]] = params[1]
        kept = self.refunded.get(params[_ENTRY_SALE])
        if kept is not None:  # what the sale's redemption took may move
            kept.pop(hotpath.TAKEN_BY_SALE, None)

    def _track_lot(self, params: Sequence[Any]) -> None:
        lots = self.lots.get(params[1])
        if lots is not None:
            lots[params[0]] = [*params, self._entries.get(params[0])]
            self._owners[params[0]] = params[1]
            if lots[params[0]][_SEQ] is None:  # its entry went another way: read again
                self.forget_lots()

    def _track_move(self, params: Sequence[Any]) -> None:
        self._move(params[1], lambda lot: lot[_REMAINING] + params[0])

    def _track_empty(self, params: Sequence[Any]) -> None:
        self._move(params[0], lambda _: 0)

    def _track_taken(self, params: Sequence[Any]) -> None:
        self.forget_members()

    def _track_sale(self, params: Sequence[Any]) -> None:
        spend = self.spend.get(params[2]) if params[2] is not None else None
        if spend is not None:
            spend.sales.append((params[3], params[_PAID]))

    def _refunded(self, params: Sequence[Any]) -> None:
        """A refund recorded: its id now is, its sale's refunds are read again when asked, and
        the member's spend loses what it refunded (if the sale is in the window kept)."""
        self.refund_ids[params[0]] = True
        kept = self.refunded.get(params[_REFUND_SALE])
        if kept is not None:
            kept.pop(hotpath.REFUNDS_OF_SALE, None)
            kept.pop(hotpath.REFUNDED_LINES, None)
        if kept is None or hotpath.SALE_TO_REFUND not in kept:
            self.spend.clear()  # whose sale it was is not known here: read again when asked
            return
        _, member_id, sale_us, *_ = kept[hotpath.SALE_TO_REFUND][0]
        spend = self.spend.get(member_id) if member_id is not None else None
        if spend is not None and sale_us > spend.since:
            spend.refunds.append((sale_us, params[_REFUND_US], params[_REFUND_FEN]))

    def _move(self, lot_id: str, to: Callable[[list[Any]], int]) -> None:
        owner = self._owners.get(lot_id)
        if owner is None or owner not in self.lots:
            self.forget_lots()  # a lot not kept (emptied before): its member's lots change
            return
        lot = self.lots[owner][lot_id]
        lot[_REMAINING] = to(lot)

    def written(self, sql: str) -> None:
        """Another write ran (the ORM's): forget what it may have changed."""
        found = _WRITTEN.match(sql)
        table = found.group(1).lower() if found else None
        if table is None:
            self.forget()
        elif table == "member":
            if sql.lstrip()[:6].upper() == "INSERT":  # a new member: only "no such card" ages
                for card_hash in [card for card, row in self.members.items() if row is None]:
                    del self.members[card_hash]
            else:
                self.forget_members()
        elif table == "member_day":
            self.days.clear()
        elif table == "lot":
            self.forget_lots()
        elif table in ("sale", "refund"):
            self.spend.clear()
            self.forget_refunds()
        elif table in ("refund_line", "allocation", "ledger_entry"):
            self.forget_refunds()

    def forget_members(self) -> None:
        self.members.clear()
        self._hashes.clear()
        self.days.clear()  # kept by member id, which a card may now name differently
        self.forget_lots()
        self.spend.clear()

    def forget_lots(self) -> None:
        self.lots.clear()
        self._owners.clear()

    def forget_refunds(self) -> None:
        self.refund_ids.clear()
        self.refunded.clear()

    def forget(self) -> None:
        """Forget everything: read again when asked."""
        self.forget_members()
        self.forget_refunds()
        self._entries.clear()
        self.since = None


def _sale_keyed(sql: str) -> Callable[[Kept, Sequence[Any]], list[tuple[Any, ...]] | None]:
    return lambda kept, params: kept._answer_sale_keyed(sql, params)


# The store's reads answered from memory and its writes followed, each by its statement (one
# dictionary look-up where a chain of comparisons ran for each of a sale's dozen statements).
_ANSWERS: dict[str, Callable[[Kept, Sequence[Any]], list[tuple[Any, ...]] | None]] = {
    hotpath.MEMBER_BY_HASH: Kept._answer_member,
    hotpath.MEMBER_TODAY_BY_HASH: Kept._answer_member_today,
    hotpath.DAY_COUNTS: Kept._answer_day,
    hotpath.DUE_LOTS_OF_MEMBER: Kept._answer_due_lots,
    hotpath.DUE_POINTS_OF_MEMBER: Kept._answer_due_points,
    hotpath.OPEN_LOTS: Kept._answer_open_lots,
    hotpath.SPEND: Kept._answer_spend,
    **{sql: _sale_keyed(sql) for sql in _SALE_KEYED},
    hotpath.REFUND_EXISTS: Kept._answer_refund_exists,
    hotpath.MEMBER_BY_ID: Kept._answer_member_by_id,
    hotpath.EMPTIED_LOT: Kept._answer_emptied_lot,
}
_TRACKS: dict[str, Callable[[Kept, Sequence[Any]], None]] = {
    hotpath.INSERT_MEMBER: Kept._track_member,
    hotpath.SAVE_BALANCE: Kept._track_balance,
    hotpath.COUNT_DAY: Kept._track_day,
    hotpath.INSERT_ENTRY: Kept._track_entry,
    hotpath.INSERT_LOT: Kept._track_lot,
    hotpath.MOVE_LOT: Kept._track_move,
    hotpath.EMPTY_LOT: Kept._track_empty,
    hotpath.TAKE_FROM_BALANCE: Kept._track_taken,
    hotpath.INSERT_SALE: Kept._track_sale,
    hotpath.INSERT_REFUND: Kept._refunded,
}
READS = frozenset(_ANSWERS)  # what Kept.answer may answer; nothing else is answered
WRITES = frozenset(_TRACKS)  # what Kept.track follows; nothing else moves the rows kept
