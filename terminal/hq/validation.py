"""Every event checked in full before it touches the chain ledger (issue 16, break 1).

:class:`~terminal.protocol.messages.Event` checks the envelope's shape; this checks what the ledger
will do with it: each body field a kind's replay reads has the right type, each number lies in a
range both databases store (PostgreSQL's ``integer`` is 32 bits, ``bigint`` 64, both signed), each
text is bounded, has no NUL (PostgreSQL refuses it, SQLite keeps it: the ledgers would diverge)
and no lone surrogate (no UTF-8 form at all), and the claimed wall time is a plausible one. What
fails is refused for good with the field named (:class:`BadEvent`), and nothing else of its batch
is held back by it.

Fields a kind's replay never reads are left alone (a newer till may send more), but the whole
payload is bounded by the collector (:mod:`terminal.hq.limits`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.operations import TENDERS
from terminal.loyalty.pricing import MAX_LINES, MAX_QTY, MAX_UNIT_PRICE_FEN
from terminal.loyalty.store.writer import ID
from terminal.protocol.messages import Event

INT32 = 2**31 - 1  # PostgreSQL integer (epoch, points, quantities)
INT64 = 2**63 - 1  # PostgreSQL bigint and SQLite INTEGER (seq, fen)
TEXT_MAX = 200  # names, reasons, operators: what a receipt or a report line can show
SHORT_MAX = 64  # codes: store, terminal, SKU, tier
MAX_POINTS = 10_000_000  # one event's points, either way (the store's MAX_ADJUST)
MAX_SALE_FEN = 10**10  # 100 million yuan: keeps a sale's points inside a 32-bit column
# A till without a real-time clock says 1970 until NTP syncs: untrusted, but plausible.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
CARD_HASH = re.compile(r"[0-9a-f]{64}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LAST4 = re.compile(r"[0-9A-Za-z]{0,4}")  # what a receipt shows of a card or phone number


class BadEvent(InvalidInput):
    """An event HQ will never apply; ``rule`` is ``event.<field>``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", f"event.{field}")
        self.field = field


Check = Callable[[str, Any], None]
# Unicode's control characters (category Cc: U+0000-U+001F, U+007F-U+009F) and surrogates (Cs):
# found by one search, where a loop asked unicodedata.category of every character.
REFUSED_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def text(maximum: int = TEXT_MAX, *, empty: bool = True,
         choices: tuple[str, ...] = ()) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise BadEvent(name, f"must be text, not {type(value).__name__}")
        if len(value) > maximum:
            raise BadEvent(name, f"is {len(value)} characters long; at most {maximum}")
        if not empty and not value.strip():
            raise BadEvent(name, "must not be empty")
        found = REFUSED_CHARS.search(value)
        if found is not None:
            char = found.group()
            what = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
            raise BadEvent(name, f"holds {what} (U+{ord(char):04X})")
        if choices and value not in choices:
            raise BadEvent(name, f"{value!r} is not one of {', '.join(choices)}")
    return check


def number(low: int, high: int) -> Check:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadEvent(name, f"must be a whole number, not {type(value).__name__}")
        if not low <= value <= high:
            raise BadEvent(name, f"{value} is outside {low}..{high}")
    return check


def pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise BadEvent(name, f"must be {what}")
    return check


def flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise BadEvent(name, f"must be true or false, not {type(value).__name__}")


def iso_date(name: str, value: Any) -> None:
    if not isinstance(value, str) or len(value) != 10:
        raise BadEvent(name, "must be a date YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise BadEvent(name, f"{value!r} is not a date") from None


def records(fields: Mapping[str, tuple[Check, bool]], low: int, high: int) -> Check:
    """A list of ``low``..``high`` objects, each checked as ``fields``."""
    def check(name: str, value: Any) -> None:
        if not isinstance(value, list) or not low <= len(value) <= high:
            raise BadEvent(name, f"must be a list of {low} to {high} entries")
        for index, item in enumerate(value):
            check_fields(f"{name}[{index}]", item, fields)
    return check


def check_fields(where: str, body: Any, fields: Mapping[str, tuple[Check, bool]]) -> None:
    """``fields`` maps a name to (its check, whether it is required); None is absent."""
    if not isinstance(body, dict):
        raise BadEvent(where, "must be an object")
    for name, (check, required) in fields.items():
        value = body.get(name)
        if value is None:
            if required:
                raise BadEvent(f"{where}.{name}", "is required")
            continue
        check(f"{where}.{name}", value)


def fields_of(fields: Mapping[str, tuple[Check, bool]]) -> Check:
    """An object whose fields are checked as ``fields``."""
    def check(name: str, value: Any) -> None:
        check_fields(name, value, fields)
    return check


_id = pattern(ID, "an id of 1-64 letters, digits or ._:-")
_hash = pattern(CARD_HASH, "64 lower-case hex digits")
_uuid = pattern(UUID, "a lower-case UUID")
_last4 = pattern(LAST4, "at most 4 letters or digits")
_points = number(0, MAX_POINTS)
_fen = number(0, MAX_SALE_FEN)
_operator = text()

_SALE_LINE = {"sku": (text(SHORT_MAX, empty=False), True), "qty": (number(1, MAX_QTY), True),
              "price_fen": (number(0, MAX_UNIT_PRICE_FEN), True), "name": (text(), False),
              "category": (text(SHORT_MAX), False), "paid_fen": (_fen, False)}
_REFUND_LINE = {"line_no": (number(1, MAX_LINES), False), "sku": (text(SHORT_MAX), True),
                "qty": (number(1, MAX_QTY), True), "fen": (_fen, False)}

BODIES: dict[str, dict[str, tuple[Check, bool]]] = {
    "register": {"member": (_id, False), "card_hash": (_hash, True), "name": (text(), False),
                 "card_last4": (_last4, False), "phone_last4": (_last4, False),
                 "phone_hash": (_hash, False), "birthday": (iso_date, False),
                 "referrer": (_id, False), "referrer_card_hash": (_hash, False),
                 "bonus": (_points, False)},
    "import": {"member": (_id, False), "card_hash": (_hash, True),
               "tier": (text(SHORT_MAX), False)},
    "sale": {"sale": (_id, True), "member": (_id, False), "card_hash": (_hash, False),
             "tender": (text(SHORT_MAX, choices=TENDERS), True), "redeem_points": (_points, False),
             "online": (flag, False), "lines": (records(_SALE_LINE, 1, MAX_LINES), True),
             "list_fen": (_fen, False), "discount_fen": (_fen, False),
             "deduction_fen": (_fen, False), "paid_fen": (_fen, False),
             "points_earned": (_points, False), "operator": (_operator, False),
             "hold": (_uuid, False)},
    "refund": {"refund": (_id, True), "sale": (_id, True), "member": (_id, False),
               "card_hash": (_hash, False), "lines": (records(_REFUND_LINE, 0, MAX_LINES), True),
               "refunded_fen": (_fen, False), "points_reversed": (_points, False),
               "points_restored": (_points, False), "operator": (_operator, False)},
    "exchange": {"exchange": (_id, True), "member": (_id, False), "card_hash": (_hash, True),
                 "sku": (text(SHORT_MAX, empty=False), True), "qty": (number(1, MAX_QTY), True),
                 "points": (_points, False), "online": (flag, False),
                 "operator": (_operator, False), "hold": (_uuid, False)},
    "adjust": {"entry": (_id, True), "member": (_id, False), "card_hash": (_hash, True),
               "points": (number(-MAX_POINTS, MAX_POINTS), True),
               "reason": (text(empty=False), True), "operator": (_operator, False)},
}
# The member's answer at a till to member care's question: a yes with the address (the
# member's registered phone; terminal.hq.care.till checks it), a no without.
BODIES["consent"] = {"member": (_id, False), "card_hash": (_hash, True),
                     "card_last4": (_last4, False),
                     "channel": (text(SHORT_MAX, choices=("sms", "email")), True),
                     "granted": (flag, True), "address": (text(254, empty=False), False),
                     "operator": (_operator, False)}
BODIES["void"] = BODIES["refund"]
# A till's X or Z report: the day's figures as it printed them (reports.daily), its own sums.
_total, _signed = number(0, INT64), number(-INT64, INT64)
BODIES["day_report"] = {
    "report": (_id, True), "kind": (text(1, choices=("X", "Z")), True), "day": (iso_date, True),
    "operator": (_operator, False),
    "sales": (fields_of({name: (_total, True) for name in (
        "count", "list_fen", "discount_fen", "deduction_fen", "paid_fen")}), True),
    "refunds": (fields_of({"count": (_total, True), "refunded_fen": (_total, True)}), True),
    "points": (fields_of({name: (_signed, True) for name in (
        "issued", "redeemed", "expired", "reversed", "restored", "adjusted")}), True),
    "liability_points": (_signed, True), "liability_fen": (_signed, True)}


_seq, _epoch, _short = number(1, INT64), number(1, INT32), text(SHORT_MAX, empty=False)


def validate(event: Event) -> None:
    """Raise :class:`BadEvent` unless every part of ``event`` the ledger uses is sound."""
    _seq("seq", event.seq)
    _epoch("epoch", event.epoch)
    _short("store", event.store)
    _short("terminal", event.terminal)
    if not EARLIEST <= event.wall_time < LATEST:
        raise BadEvent("wall_time", f"{event.wall_time.isoformat()} is not a plausible time "
                       f"({EARLIEST.year} to {LATEST.year})")
    check_fields("body", event.body, BODIES[event.kind])
    if event.kind == "sale":
        total = sum(line["qty"] * line["price_fen"] for line in event.body["lines"])
        if total > MAX_SALE_FEN:
            raise BadEvent("body.lines", f"come to {total} fen; at most {MAX_SALE_FEN}")
    if event.kind == "adjust" and event.body["points"] == 0:
        raise BadEvent("body.points", "must not be zero")
