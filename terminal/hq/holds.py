"""Which hold covers a till's redemption, and the rule for one with no hold (issue 16, break 3).

A till redeems a member's points against HQ's balance by asking HQ to hold them first; the sale's
event then posts that hold. A redemption HQ holds nothing for (the till could not reach HQ, or
never asked) is taken only within the rules' ``offline_allowance`` for the member and day,
counted chain-wide by HQ's own day counters: otherwise any till could spend any member's points
by saying so.

A hold covers a redemption only if it is for the same member, made by the same till (the topic
the broker vouched for when it was asked), for at least the points redeemed, and not posted
already (one hold, one redemption). A voided hold still covers: HQ said yes, and the till sold.
A posted one means its record is here already: :func:`posted` lets the ledger refuse the repeat
as a repeat.

Asking for a hold (break 4): ids are minted per request by the till, so an id HQ holds already is
the same request again only if it comes from the same till (the topic the broker vouched for),
for the same member and points, and is still pending (:func:`same_request`). A till's new hold on
a member replaces its older pending ones on that member (:func:`supersede`): a till rings one sale
at a time, so an older one is a cleared redemption or one orphaned by a crash. And a till may
hold only so many holds and points at once, a member only so many holds, and no hold may be more
than the member may redeem in a day, nor a till renew its hold on one member for ever
(:func:`over_bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peewee import Database

from terminal.hq.batch import BatchStatements
from terminal.hq.database import member_key
from terminal.hq.models import MemberHold
from terminal.hq.policy import HoldRules
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.card_states import FROZEN, RETIRED
from terminal.loyalty.store.hotpath import MemberRow
from terminal.protocol.hq_refusals import Refusal, refusal
from terminal.protocol.messages import MemberRequest


def covering(hold: MemberHold | None, card_hash: str, points: int, store: str,
             terminal: str) -> MemberHold | None:
    """``hold`` (the one the redemption names, None if HQ has none) if it covers it."""
    if hold is None or hold.state == "posted":
        return None
    if (hold.card_hash, hold.store, hold.terminal) != (card_hash, store, terminal):
        return None
    return hold if hold.points >= points else None


def posted(hold: MemberHold | None) -> bool:
    return hold is not None and hold.state == "posted"


def post(sql: BatchStatements, hold: MemberHold, at_us: int) -> None:
    """Settle ``hold`` in the transaction that posts its redemption: the points leave the member
    by that redemption, so the hold stops counting against what is available. Kept with the
    batch's writes on PostgreSQL (BatchStatements.post_hold); ``hold`` follows."""
    sql.post_hold(hold.id, at_us)
    hold.state, hold.settled_us = "posted", at_us


def over_allowance(points: int, allowance: int, used_today: int) -> str:
    """The review note for a redemption without a hold, or "" when the allowance covers it."""
    left = max(0, allowance - used_today)
    if points <= left:
        return ""
    return (f"redeem.offline_allowance: {points} points redeemed without an HQ hold, over the "
            f"offline allowance ({left} left for the member today): not taken from the member")




HOUR_US = 3_600_000_000


def same_request(hold: MemberHold, request: MemberRequest, store: str,
                 terminal: str) -> Refusal | None:
    """Why ``request`` is not a repeat of ``hold``'s request (None when it is)."""
    if (hold.store, hold.terminal) != (store, terminal):
        return refusal("hold.other_till")
    if (hold.card_hash, hold.points) != (request.member, request.points):
        return refusal("hold.other_request")
    if hold.state != "pending":
        return refusal("hold.settled", state=hold.state)
    return None


def _own(card_hash: str, store: str, terminal: str) -> Any:
    return ((MemberHold.card_hash == card_hash) & (MemberHold.store == store)
            & (MemberHold.terminal == terminal))


def supersede(card_hash: str, store: str, terminal: str, now_us: int) -> int:
    """Void the till's pending holds on the member: its new hold, granted, replaces them."""
    return (MemberHold.update(state="voided", settled_us=now_us)
            .where(_own(card_hash, store, terminal) & (MemberHold.state == "pending"))
            .execute())


# What a hold request needs, in one statement (a hold was about a dozen round trips): the
# member, the card's state at HQ, the hold already under the request's id, the counts HQ's
# bounds check (over_bounds), the member's pending holds and the till's own on them (replaced
# if this one is granted), and the points of the member's lots expired but not yet swept.
# "Pending" counts only holds not timed out; "own" is the till's holds on this member.
#
# Each count's WHERE names only what finds its rows by a key, the rest is tested in the CASE:
# the member's holds by card hash, the till's pending holds by store and terminal (migration 25's
# member_hold_till_pending). With "pending, not timed out" in the WHERE the planner may take
# migration 25's other index (the pending holds by expiry, the upkeep's) for any of them: it
# costs "expires after now" at a third of the pending holds, where it is all of them, and the
# expiry index's order follows the table's. Under a backlog whose redemptions held HQ holds
# (10,000 pending) a hold then read every pending hold two to five times (3.9 ms against 0.3,
# statement and plan in docs/hq.md, session 18 (c)); the function's plan is kept for the
# connection, so once chosen it stayed until the next ANALYZE.
_MEMBER = ", ".join(f"m.{column}" for column in hotpath.MEMBER_COLUMNS)
_PENDING = "h.state = 'pending' AND h.expires_us > q.at_us"
_TILL = "h.store = q.store AND h.terminal = q.terminal"
_TILL_PENDING = f"FROM member_hold h WHERE {_TILL} AND h.state = 'pending'"
_THE_MEMBERS = "FROM member_hold h WHERE h.card_hash = q.card_hash"
_READ_COLUMNS = (
    f"{_MEMBER}, c.state AS card_state, c.reason AS card_reason, e.store AS e_store, "
    "e.terminal AS e_terminal, e.card_hash AS e_card_hash, e.points AS e_points, "
    "e.state AS e_state, "
    "(SELECT COUNT(CASE WHEN h.card_hash <> q.card_hash AND h.expires_us > q.at_us THEN 1 END) "
    f"{_TILL_PENDING}) AS till_count, "
    "(SELECT COALESCE(SUM(CASE WHEN h.card_hash <> q.card_hash AND h.expires_us > q.at_us "
    f"THEN h.points END), 0) {_TILL_PENDING}) AS till_points, "
    f"(SELECT COUNT(CASE WHEN {_PENDING} AND NOT ({_TILL}) THEN 1 END) {_THE_MEMBERS}) "
    "AS member_count, "
    f"(SELECT COUNT(CASE WHEN {_TILL} AND h.created_us > q.at_us - 3600000000 THEN 1 END) "
    f"{_THE_MEMBERS}) AS asked, "
    f"(SELECT COALESCE(SUM(CASE WHEN {_PENDING} THEN h.points END), 0) {_THE_MEMBERS}) "
    "AS pending, "
    f"(SELECT COALESCE(SUM(CASE WHEN {_TILL} AND {_PENDING} THEN h.points END), 0) "
    f"{_THE_MEMBERS}) AS replaced, "
    "(SELECT COALESCE(SUM(l.remaining), 0) FROM lot l WHERE l.member_id = m.id "
    "AND l.remaining > 0 AND l.expires_us <= q.at_us AND l.dated_trusted) AS unswept"
)
_REQUEST = ("CAST(? AS TEXT) AS card_hash, CAST(? AS TEXT) AS hold_id, "
            "CAST(? AS TEXT) AS store, CAST(? AS TEXT) AS terminal, CAST(? AS BIGINT) AS at_us")
_JOINS = ("LEFT JOIN member m ON m.card_hash = q.card_hash "
          "LEFT JOIN card_state c ON c.card_hash = q.card_hash "
          "LEFT JOIN member_hold e ON e.id = q.hold_id")
READ = f"SELECT {_READ_COLUMNS} FROM (SELECT {_REQUEST}) q {_JOINS}"
_WIDTH = len(hotpath.MEMBER_COLUMNS)

# A hold in one wait for the server (PostgreSQL; ChainLedger._hold_at_once, loop_holds): the
# read above, HQ's decision on it, the till's older pending holds on the member voided
# (supersede) and the new hold inserted, in one statement, run after the member's lock by
# migration 33's function (ASK_AT_ONCE, below; until session 14 sent with the BEGIN and the
# lock before it and the COMMIT after it, all answered together). It grants only what
# :func:`over_bounds`, :func:`same_request` and the ledger's checks would (the same read, the
# same comparisons, in numeric as Python's integers); the ledger then decides again in Python
# from the row it returns, for the refusal's words, and takes the full way when the two differ
# (logged) or when the statement cannot decide (a tier review due: the tier needs the window's
# spend).
_GRANTED = (
    "(r.card_state IS NULL OR r.card_state NOT IN (q.frozen, q.retired)) "
    "AND r.e_store IS NULL AND r.id IS NOT NULL "
    "AND (q.day_cap IS NULL OR COALESCE(q.points, 0) <= q.day_cap) "
    "AND r.till_count < q.max_per_till "
    "AND r.till_points + COALESCE(q.points, 0) <= q.max_points_per_till "
    "AND r.member_count < q.max_per_member "
    "AND r.asked < q.max_per_till_member_per_hour "
    "AND r.tier_reviewed_us >= q.month_start "
    "AND q.points <= r.balance - r.unswept - r.pending + r.replaced"
)
ASK = (
    f"WITH q AS (SELECT {_REQUEST}, CAST(? AS NUMERIC) AS points, "
    "CAST(? AS BIGINT) AS expires_us, CAST(? AS BIGINT) AS month_start, "
    "CAST(? AS NUMERIC) AS day_cap, CAST(? AS NUMERIC) AS max_per_till, "
    "CAST(? AS NUMERIC) AS max_points_per_till, CAST(? AS NUMERIC) AS max_per_member, "
    "CAST(? AS NUMERIC) AS max_per_till_member_per_hour, CAST(? AS TEXT) AS frozen, "
    "CAST(? AS TEXT) AS retired), "
    f"r AS (SELECT {_READ_COLUMNS} FROM q {_JOINS}), "
    f"g AS (SELECT COALESCE({_GRANTED}, FALSE) AS granted FROM q, r), "
    "v AS (UPDATE member_hold h SET state = 'voided', settled_us = q.at_us FROM q, g "
    "WHERE g.granted AND h.card_hash = q.card_hash AND h.store = q.store "
    "AND h.terminal = q.terminal AND h.state = 'pending'), "
    "i AS (INSERT INTO member_hold (id, card_hash, points, state, store, terminal, created_us, "
    "expires_us) SELECT q.hold_id, q.card_hash, q.points, 'pending', q.store, q.terminal, "
    "q.at_us, q.expires_us FROM q, g WHERE g.granted RETURNING 1) "
    "SELECT r.*, (SELECT COUNT(*) FROM i) FROM r"
)


@dataclass(frozen=True)
class Read:
    """What :data:`READ` found for a hold request."""

    member: MemberRow | None
    card_state: str | None  # HQ's state of the card (None: active)
    card_reason: str
    existing: MemberHold | None  # the hold already under the request's id
    till_count: int  # the till's pending holds on other members
    till_points: int  # and their points
    member_count: int  # the member's pending holds from other tills
    asked: int  # the till's holds on the member in the last hour
    pending: int  # the member's pending points
    replaced: int  # of those, the till's own (replaced if the new hold is granted)
    unswept: int  # points of the member's lots expired by now, not yet swept


def read(db: Database, request: MemberRequest, store: str, terminal: str,
         now_us: int) -> Read:
    row: Any = db.execute_sql(READ.replace("?", db.param), (
        request.member or "", request.hold_id or "", store, terminal, now_us)).fetchone()
    return _found(row, request)


def ask_parameters(request: MemberRequest, store: str, terminal: str, now_us: int,
                   expires_us: int, month_start_us: int, bounds: HoldRules,
                   loyalty: Rules) -> tuple[Any, ...]:
    """:data:`ASK`'s parameters (sent through Peewee's connection or psycopg's own)."""
    return (request.member or "", request.hold_id or "", store, terminal, now_us,
            request.points, expires_us, month_start_us, loyalty.redeem.per_member_per_day,
            bounds.max_per_till, bounds.max_points_per_till, bounds.max_per_member,
            bounds.max_per_till_member_per_hour, FROZEN, RETIRED)


# :data:`ASK` after the member's advisory lock, in one statement (PostgreSQL, migration 33's
# function hq_hold_ask, which runs ASK as it is here: tests/hq/test_hold_function.py): sent in
# autocommit, its own transaction, one message and one answer. The first parameter is the
# member's lock key (database.member_key; NULL: no member, no lock), then ASK's.
_ASK_TYPES = ("integer", "text", "text", "text", "text", "bigint", "numeric", "bigint", "bigint",
              "numeric", "numeric", "numeric", "numeric", "numeric", "text", "text")
ASK_AT_ONCE = ("SELECT * FROM hq_hold_ask("
               + ", ".join(f"CAST(? AS {kind})" for kind in _ASK_TYPES) + ")")


def lock_key(request: MemberRequest) -> int | None:
    """The advisory lock key :data:`ASK_AT_ONCE` takes for ``request``'s member (None: the
    request names none)."""
    return member_key(request.member) if request.member is not None else None


def ask(db: Database, key: int | None, parameters: tuple[Any, ...]) -> Any:
    """:data:`ASK_AT_ONCE` with the member's lock ``key`` and :data:`ASK`'s ``parameters``, in
    a transaction of its own (PostgreSQL; Peewee's connection is in autocommit outside a
    transaction): its row, for :func:`asked`."""
    return db.execute_sql(ASK_AT_ONCE.replace("?", db.param), (key, *parameters)).fetchone()


def asked(row: Any, request: MemberRequest) -> tuple[Read, bool]:
    """What :data:`ASK` read (its ``row``), and whether it granted the hold (voided the till's
    older ones on the member and inserted it)."""
    return _found(row[:-1], request), bool(row[-1])


# A void in one statement (PostgreSQL, on the event loop: terminal.hq.loop_holds), sent after
# its member's lock: the hold under the request's id as read then, and the hold voided when the
# ledger's void would void it (the till's own and not yet posted: ChainLedger.void_answer,
# which decides again from the row read).
VOID = (
    "WITH e AS (SELECT id, store, terminal, state, settled_us FROM member_hold WHERE id = ?), "
    "u AS (UPDATE member_hold h SET state = 'voided', settled_us = ? FROM e "
    "WHERE h.id = e.id AND e.store = ? AND e.terminal = ? AND e.state <> 'posted' RETURNING 1) "
    "SELECT e.store, e.terminal, e.state, e.settled_us, (SELECT COUNT(*) FROM u) "
    "FROM (SELECT 1) AS one LEFT JOIN e ON TRUE"
)
# The member whose lock a void takes: its hold's.
HOLD_MEMBER = "SELECT card_hash FROM member_hold WHERE id = ?"


@dataclass(frozen=True)
class Voided:
    """What :data:`VOID` changed, to undo it (ChainLedger.void_again): the hold as it was
    before (``before``: its state and settled time) and the settled time the statement wrote."""

    before: MemberHold
    settled_us: int


def voided(row: Any, request: MemberRequest) -> tuple[MemberHold | None, bool]:
    """The hold :data:`VOID` read (None: no such hold), and whether it voided it."""
    store, terminal, state, settled_us, count = row
    if store is None:
        return None, False
    return MemberHold(id=request.hold_id, store=store, terminal=terminal, state=state,
                      settled_us=settled_us), bool(count)


def _found(row: Any, request: MemberRequest) -> Read:
    member = MemberRow(*row[:_WIDTH]) if row[0] is not None else None
    state, reason, *held, till_count, till_points, member_count, asked, pending, replaced, \
        unswept = row[_WIDTH:]
    existing = None
    if held[0] is not None:
        existing = MemberHold(id=request.hold_id, store=held[0], terminal=held[1],
                              card_hash=held[2], points=held[3], state=held[4])
    return Read(member, state, reason or "", existing, int(till_count), int(till_points),
                int(member_count), int(asked), int(pending), int(replaced), int(unswept))


def over_bounds(rules: HoldRules, loyalty: Rules, request: MemberRequest,
                found: Read) -> Refusal | None:
    """Why HQ's bounds refuse the hold (None when they allow it)."""
    points = request.points or 0
    day_cap = loyalty.redeem.per_member_per_day
    if day_cap is not None and points > day_cap:
        return refusal("redeem.per_member_per_day", points=points, cap=day_cap)
    # The till's own pending holds on this member are replaced if this one is granted.
    count, held = found.till_count, found.till_points
    if count >= rules.max_per_till:
        return refusal("holds.max_per_till", count=count)
    if held + points > rules.max_points_per_till:
        return refusal("holds.max_points_per_till", held=held, points=points,
                       cap=rules.max_points_per_till)
    if found.member_count >= rules.max_per_member:
        return refusal("holds.max_per_member", count=rules.max_per_member)
    asked = found.asked
    if asked >= rules.max_per_till_member_per_hour:
        return refusal("holds.max_per_till_member_per_hour", count=asked)
    return None
