"""One adjustment for many members at once, set-based: a care campaign's bonus
(:func:`terminal.hq.care.campaigns.grant`).

:meth:`MemberOps.adjust` costs about 39 statements a member (its number, the member's lock and
row, its due expiries, open lots, entry, lot, balance, audit rows, card state, ``member_op``
row), each a wait for the server. Here a chunk of members costs a few statements whatever its
size, and its rows are exactly the ones the members' adjustments one by one would write, made
by the same code:

* the members, their card states, their due expiries and their open lots are read in one query
  each (:func:`adjust_many`);
* the terminal's store code that one adjustment runs (``Exchanges._adjust``: the due expiries
  recorded, the credit's lot expiring by the rules, the balance, the audit row;
  ``CardStates._apply_card_update``: the card's state at the operation's version, HQ's tier,
  its audit row) runs for each member in turn inside one write transaction of the store
  (:class:`GrantStore`), its reads answered from those rows and its writes kept
  (:class:`Gathered`), in the order one by one would make them: the same sequence numbers on
  SQLite, the same order of them on PostgreSQL (from one block of the chain sequence, where one
  by one takes two blocks a member);
* the refusals are :class:`MemberOps`' own (``refuse_absent``, ``refuse_retired``), and so are
  the card state an operation leaves and the ``member_op`` row (``state_kept``,
  ``card_update``, ``op_row``);
* then everything is written a statement per table: on PostgreSQL ``INSERT ... SELECT FROM
  unnest`` over binary arrays (and ``UPDATE ... FROM unnest``), on SQLite ``executemany``.

The caller holds the write transaction (``database.writing``); :func:`adjust_many` takes the
members' locks in key order, unless the caller holds them already (``locked``: a campaign's grant
locks its whole chunk before it reads which of its members the bonus is for). The card states
changed wait for the collectors' member-state publisher (:mod:`.publish`) as every operation's
do: each is signed and sent to every till.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from peewee import Database, PostgresqlDatabase, fn

from terminal.hq import buffered
from terminal.hq.batch import Rows
from terminal.hq.database import lock_members
from terminal.hq.member_ids import among
from terminal.hq.member_ops.errors import (
    InvalidRequest,
    LedgerRefused,
    MemberOpError,
    UnknownMember,
)
from terminal.hq.member_ops.service import (
    MAX_ACTOR,
    MAX_REASON,
    MemberOps,
    _clean,
    card_update,
    op_row,
    refuse_absent,
    refuse_retired,
    state_kept,
)
from terminal.hq.models import HQ_MODELS, MemberOp
from terminal.loyalty.clock import Moment, to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.store import LedgerStore, hotpath
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.card_states import ACTIVE
from terminal.loyalty.store.exchange import check_adjustment
from terminal.loyalty.store.hotpath import MEMBER_COLUMNS, MemberRow
from terminal.loyalty.store.models import MODELS, CardState
from terminal.loyalty.store.writer import Writer

# What one member's adjustment and card update write (kept, then written a table at a time).
_KEPT = (hotpath.INSERT_ENTRY, hotpath.INSERT_LOT, hotpath.INSERT_ALLOCATION,
         hotpath.EMPTY_LOT, hotpath.MOVE_LOT, hotpath.SAVE_BALANCE, hotpath.INSERT_AUDIT)
_CARD_COLUMNS = ("card_hash", "state", "reason", "replaced_by", "version", "updated_us")
_OP_COLUMNS = ("seq", "kind", "member", "card_hash", "actor", "reason", "detail", "at_us")
# What :func:`_write` sends as a batch's writes are sent (on PostgreSQL, buffered.Writes).
_BUFFERED = (hotpath.INSERT_ENTRY, hotpath.INSERT_LOT, hotpath.INSERT_ALLOCATION,
             hotpath.INSERT_AUDIT, hotpath.MOVE_LOT, hotpath.SAVE_BALANCE)
_STATE_ROW = "SELECT card_hash, state, reason, replaced_by, version, updated_us FROM card_state"


class Gathered(hotpath.Statements):
    """The store's statements for a chunk's adjustments: the reads one adjustment makes answered
    from the chunk's rows (read in one query each), its writes kept in the order made
    (:attr:`rows`, :attr:`meta`); the write transaction's own counters read from the database.
    A statement it does not expect is refused: the rows would no longer be the store's."""

    def __init__(self, db: Database, members: dict[str, MemberRow], as_of_us: int | None,
                 due: dict[str, list[tuple[Any, ...]]],
                 lots: dict[str, list[tuple[Any, ...]]]) -> None:
        super().__init__(db)
        self.members = members  # card hash -> the member's row (moved by the store's code)
        self.as_of_us, self.due, self.lots = as_of_us, due, lots
        self.emptied: set[str] = set()
        self.rows: dict[str, list[Sequence[Any]]] = {sql: [] for sql in _KEPT}
        self.meta: dict[str, str] = {}

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql == hotpath.META_COUNTERS:  # the write transaction's own, once a chunk
            return super().run(sql, params)
        if sql in self.rows:
            self.rows[sql].append(params)
            if sql == hotpath.EMPTY_LOT:
                self.emptied.add(params[0])
            return Rows([])
        if sql == hotpath.SET_META:
            self.meta[params[0]] = params[1]
            return Rows([])
        if sql == hotpath.DUE_LOTS_OF_MEMBER and params[1] == self.as_of_us:
            return Rows(self.due.get(params[0], []))
        if sql == hotpath.OPEN_LOTS:
            return Rows([row for row in self.lots.get(params[0], [])
                          if row[0] not in self.emptied])
        raise RuntimeError(f"a bulk adjustment does not expect this statement: {sql}")

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.run(sql, row)

    def set_meta(self, rows: Sequence[tuple[str, str]]) -> None:
        for key, value in rows:
            self.run(hotpath.SET_META, (key, value))

    def member(self, card_hash: str) -> MemberRow | None:
        return self.members.get(card_hash)


class GrantStore(LedgerStore):
    """HQ's ledger store for a chunk's adjustments: the statements :class:`Gathered`, the card
    states read with the chunk and kept (:attr:`cards`) rather than written one by one."""

    def __init__(self, ops: MemberOps, sql: Gathered, versions: dict[str, int]) -> None:
        super().__init__(ops.db, ops.rules, ops.card_key, ops.store.identity, outbox=False)
        self.sql = sql
        self.versions = versions
        self.cards: dict[str, tuple[Any, ...]] = {}

    def card_version(self, card_hash: str) -> int:
        return self.versions.get(card_hash, 0)

    def _set_card_state(self, w: Writer, card_hash: str, state: str, reason: str,
                        replaced_by: str | None, version: int) -> None:
        self.versions[card_hash] = version
        self.cards[card_hash] = (card_hash, state, reason, replaced_by, version, w.us)


@dataclass(frozen=True)
class Granted:
    """One member's adjustment: its operation's number (the card state's version)."""

    seq: int
    member: str


def adjust_many(ops: MemberOps, cards: Sequence[CardRef | None], points: int, *, actor: str,
                reason: str, locked: bool = False) -> list[Granted | MemberOpError]:
    """Adjust each card's member by ``points`` (> 0), as :meth:`MemberOps.adjust` would one
    after another in this order, inside the caller's write transaction; for each card its
    :class:`Granted`, or the refusal :meth:`MemberOps.adjust` would raise (None: no member).
    ``locked``: the caller holds the cards' member locks already, taken in this transaction in
    key order (:func:`lock_members`), so none is taken here."""
    with bound(ops.db, MODELS + HQ_MODELS):
        return _adjust_many(ops, cards, points, actor, reason, locked)


def _adjust_many(ops: MemberOps, cards: Sequence[CardRef | None], points: int, actor: str,
                 reason: str, locked: bool) -> list[Granted | MemberOpError]:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidRequest(f"a bonus is a positive whole number of points, not {points!r}",
                             "points")
    actor = _clean(actor, "the acting user's name as actor", MAX_ACTOR)
    reason = _clean(reason, "a reason", MAX_REASON)
    try:
        check_adjustment(points, reason, actor)
    except Refused as exc:
        raise LedgerRefused(str(exc), "points") from None
    db = ops.db
    hashes = sorted({card.hash for card in cards if card is not None})
    if not locked:  # before the members are read: a till's event for one waits for the grant
        lock_members(db, hashes)
    moment = Moment(ops.clock(), True, None)
    as_of = moment.expiry_as_of
    as_of_us = to_micros(as_of) if as_of is not None else None
    members = {row.card_hash: row for row in _members(db, hashes)}
    states = {row[0]: row for row in _select(db, f"{_STATE_ROW} WHERE {{}}", "card_hash",
                                             hashes)}
    ids = sorted(row.id for row in members.values())
    due: dict[str, list[tuple[Any, ...]]] = {}
    if as_of_us is not None:
        # DUE_LOTS_OF_MEMBER's rows and order, for the chunk's members in one query.
        for lot_id, member_id, remaining in _select(
                db, hotpath.DUE_LOTS_OF_MEMBER.replace("l.member_id = ?", "{}").replace(
                    "ORDER BY ", "ORDER BY l.member_id, "), "l.member_id", ids, (as_of_us,)):
            due.setdefault(member_id, []).append((lot_id, member_id, remaining))
    lots: dict[str, list[tuple[Any, ...]]] = {}
    for row in _select(db, hotpath.OPEN_LOTS.replace("l.member_id = ?", "{}").replace(
            "SELECT l.id,", "SELECT l.member_id, l.id,"), "l.member_id", ids):
        lots.setdefault(row[0], []).append(tuple(row[1:]))
    sql = Gathered(db, members, as_of_us, due, lots)
    store = GrantStore(ops, sql, {card: row[4] for card, row in states.items()})
    seq = int(MemberOp.select(fn.COALESCE(fn.MAX(MemberOp.seq), 0)).scalar()) + 1
    checked: list[tuple[MemberRow, CardState | None] | MemberOpError] = []
    for card in cards:  # an adjustment leaves a card's state as it was: checked once
        try:
            if card is None:
                raise UnknownMember("the member is gone", "card")
            member = members.get(card.hash)
            state = _state(states.get(card.hash))
            if member is None:
                refuse_absent(card, state)
            refuse_retired(member.card_last4, state.state if state else ACTIVE)
            checked.append((member, state))
        except MemberOpError as exc:
            checked.append(exc)
    if all(isinstance(outcome, MemberOpError) for outcome in checked):
        return checked  # type: ignore[return-value]  # no write transaction, as one by one
    results: list[Granted | MemberOpError] = []
    op_rows: list[tuple[Any, ...]] = []
    at_us = to_micros(moment.at)
    with store._writing(moment) as w:
        for outcome in checked:
            if isinstance(outcome, MemberOpError):
                results.append(outcome)
                continue
            member, state = outcome
            if member.card_hash in store.cards:  # the same card again: its state as left
                state = _state(store.cards[member.card_hash])
            store._adjust(w, member, points, reason, actor)
            now, kept = state_kept(state)
            store._apply_card_update(w, card_update(
                seq, member.card_hash, now, reason if kept is None else kept, member.tier),
                actor)
            row = op_row(seq, "adjust", member.id, member.card_hash, actor, reason,
                         {"points": points}, at_us)
            op_rows.append(tuple(row[column] for column in _OP_COLUMNS))
            results.append(Granted(seq, member.id))
            seq += 1
    _write(db, sql, store.cards, op_rows)
    return results


def _state(row: tuple[Any, ...] | None) -> CardState | None:
    """A ``card_state`` row as the model :func:`state_kept` reads (not saved)."""
    return None if row is None else CardState(**dict(zip(_CARD_COLUMNS, row, strict=True)))


def _members(db: Database, hashes: list[str]) -> list[MemberRow]:
    return [MemberRow(*row) for row in _select(
        db, f"SELECT {', '.join(MEMBER_COLUMNS)} FROM member WHERE {{}}", "card_hash", hashes)]


def _select(db: Database, sql: str, column: str, keys: list[str],
            params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """``sql`` (written with ``?``) with ``{}`` the condition that ``column`` is one of
    ``keys`` (:func:`among`: one parameter), its ``?`` the other ``params``."""
    if not keys:
        return []
    condition, param = among(db, column, keys)
    return db.execute_sql(sql.replace("?", db.param).format(condition),
                          (param, *params)).fetchall()


# -- the writes, a statement per table -------------------------------------------------------

def _write(db: Database, sql: Gathered, cards: dict[str, tuple[Any, ...]],
           ops: list[tuple[Any, ...]]) -> None:
    """Everything the chunk's adjustments kept, in an order the foreign keys and the lot's
    trigger allow (entries before their lots and allocations)."""
    rows = sql.rows
    table = _Tables(db)
    if table.pg:
        # As an ingest batch's are sent (terminal.hq.buffered.Writes): a table's rows in one
        # INSERT over binary arrays, tables in an order the foreign keys and the lot's trigger
        # allow, then each member's last balance.
        writes = buffered.Writes(table.send, table.all_types())
        for statement in _BUFFERED:
            for row in rows[statement]:
                writes.add(statement, row)
        writes.flush()
    else:
        for statement in (hotpath.INSERT_ENTRY, hotpath.INSERT_LOT, hotpath.INSERT_ALLOCATION,
                          hotpath.INSERT_AUDIT):
            name, columns = buffered._insert_key(statement)
            table.insert(name, columns, rows[statement])
        statements = hotpath.Statements(db)
        statements.many(hotpath.MOVE_LOT, rows[hotpath.MOVE_LOT])  # none: a credit takes none
        # Each member's last balance (the statement sets it whole).
        last = {member: (balance, debt) for balance, debt, member in rows[hotpath.SAVE_BALANCE]}
        statements.many(hotpath.SAVE_BALANCE, [(*last[member], member) for member in sorted(last)])
    table.empty_lots([lot_id for (lot_id,) in rows[hotpath.EMPTY_LOT]])
    table.meta(sql.meta)
    table.insert(CardState._meta.table_name, _CARD_COLUMNS, list(cards.values()),
                 "ON CONFLICT (card_hash) DO UPDATE SET " + ", ".join(
                     f"{column} = excluded.{column}" for column in _CARD_COLUMNS[1:]))
    table.insert(MemberOp._meta.table_name, _OP_COLUMNS, ops)


class _Tables:
    """Rows into a table a statement at a time: on PostgreSQL over binary arrays (``unnest``,
    as terminal.hq.buffered sends a batch's), on SQLite by ``executemany``."""

    TABLES = ("ledger_entry", "lot", "allocation", "audit", "member", "meta", "card_state",
              "member_op", "care_message")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pg = isinstance(db, PostgresqlDatabase)
        self._types: dict[str, dict[str, str]] | None = None

    def all_types(self) -> dict[str, dict[str, str]]:
        """Each table's column types (PostgreSQL), read for all :attr:`TABLES` at the first."""
        if self._types is None:
            self._types = buffered.column_types(self.db.execute_sql(
                buffered.TYPES, (list(self.TABLES),)).fetchall())
        return self._types

    def types(self, table: str) -> dict[str, str]:
        return self.all_types()[table]

    def send(self, statement: str, params: Sequence[Any]) -> None:
        self.db.execute_sql(statement, params)

    def arrays(self, table: str, columns: Sequence[str]) -> str:
        types = self.types(table)
        return ", ".join(f"%b::{types[column]}[]" for column in columns)

    def insert(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]],
               tail: str = "") -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if not self.pg:
            marks = ", ".join(["?"] * len(columns))
            self.db.cursor().executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) {tail}", rows)
            return
        self.db.execute_sql(f"INSERT INTO {table} ({names}) SELECT * FROM unnest("
                            f"{self.arrays(table, columns)}) {tail}",
                            [list(column) for column in zip(*rows, strict=True)])

    def empty_lots(self, ids: list[str]) -> None:
        if not ids:
            return
        if not self.pg:
            self.db.cursor().executemany(hotpath.EMPTY_LOT, [(lot_id,) for lot_id in ids])
            return
        self.db.execute_sql(f"UPDATE lot SET remaining = 0 WHERE id = ANY("
                            f"{self.arrays('lot', ('id',))})", (sorted(ids),))

    def meta(self, values: dict[str, str]) -> None:
        """The meta keys upserted as the store's SET_META does (on PostgreSQL HQ's own text:
        the sequence and the trusted-time floor only ever move up)."""
        if not values:
            return
        keys = sorted(values)
        statement = hotpath.Statements(self.db)._sql(hotpath.SET_META)
        if not self.pg:
            self.db.cursor().executemany(statement, [(key, values[key]) for key in keys])
            return
        head, _, tail = statement.partition(" VALUES (%s, %s)")
        self.db.execute_sql(f"{head} SELECT * FROM unnest({self.arrays('meta', ('key', 'value'))})"
                            f"{tail}", (keys, [values[key] for key in keys]))
