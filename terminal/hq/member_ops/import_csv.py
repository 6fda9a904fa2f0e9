"""Members from another system, as CSV: read and checked whole before anything is written.

The file is UTF-8 (a byte-order mark is allowed) with a header row naming its columns:

| column | required | what |
|---|---|---|
| `card` | yes | the member's card number (payment cards refused) |
| `tier` | yes | a tier of the rules in force |
| `points` | yes | the opening balance, a whole number from 0 |
| `name` | no | up to 64 characters (Chinese welcome) |
| `phone` | no | 5 to 15 digits, unique |
| `birthday` | no | YYYY-MM-DD, in the past |
| `expires` | no | YYYY-MM-DD: the opening points expire at the start of that day (programme zone) |
| `store` | no | the member's home store (e.g. S001): store managers see their stores' members |

Without `expires`, the opening points expire by the rules, counted from the import.

Every problem is reported with its line, duplicates included (a card or phone twice in the file,
or already a member at HQ); one problem and nothing is imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time

from terminal.hq.member_ops.errors import ImportProblem, ImportRejected
from terminal.loyalty.cards import phone_hash
from terminal.loyalty.errors import PaymentCardRefused, Refused
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.accounts import CardRef, member_ref
from terminal.loyalty.store.card_states import Profile
from terminal.loyalty.store.exchange import MAX_ADJUST
from terminal.loyalty.store.members import PHONE
from terminal.loyalty.store.models import CardState, Member
from terminal.protocol.topics import TopicError, check_id

COLUMNS = ("card", "tier", "points", "name", "phone", "birthday", "expires", "store")
REQUIRED = ("card", "tier", "points")


class _Bad(ValueError):
    """One column of a row refused: its :class:`ImportProblem` but for the line."""

    def __init__(self, field: str, code: str, message: str, **values: object) -> None:
        super().__init__(message)
        self.field, self.code = field, code
        self.values = {key: str(value) for key, value in values.items()}

    def at(self, line: int) -> ImportProblem:
        return ImportProblem(line, self.field, self.code, str(self), self.values)


@dataclass(frozen=True)
class ImportRow:
    line: int
    card: CardRef
    tier: str
    points: int
    profile: Profile
    expires_at: datetime | None
    store: str | None = None  # the home store


def read_rows(text: str, rules: Rules, card_key: bytes, now: datetime) -> list[ImportRow]:
    """Every row checked (models bound by the caller, for the duplicates already at HQ);
    raises :class:`ImportRejected` listing every problem."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = reader.fieldnames or []
    problems: list[ImportProblem] = []
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise ImportRejected([ImportProblem(
            1, "header", "columns", f"the header must name the columns {', '.join(COLUMNS)} "
            f"(required: {', '.join(REQUIRED)}); unknown {unknown}, missing {missing}",
            {"unknown": ", ".join(unknown), "missing": ", ".join(missing)})])
    rows: list[ImportRow] = []
    cards: dict[str, int] = {}
    phones: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record or any(value is None for value in record.values()):
            problems.append(ImportProblem(line, "row", "columns",
                                          f"{len(header)} columns expected",
                                          {"n": str(len(header))}))
            continue
        try:
            row = _row(line, record, rules, card_key, now)
            _duplicate(row, cards, phones)
        except _Bad as exc:
            problems.append(exc.at(line))
            continue
        rows.append(row)
    if not rows and not problems:
        problems.append(ImportProblem(1, "file", "empty", "no members in the file"))
    if problems:
        raise ImportRejected(problems)
    return rows


def _duplicate(row: ImportRow, cards: dict[str, int], phones: dict[str, int]) -> None:
    """Refuse a row whose card or phone is on an earlier line or already at HQ."""
    last4 = row.card.last4
    shown = f"card ****{last4}"
    if row.card.hash in cards:
        raise _Bad("card", "duplicate_in_file", f"duplicate: {shown} is also on line "
                   f"{cards[row.card.hash]}", last4=last4, other_line=cards[row.card.hash])
    if Member.get_or_none(Member.card_hash == row.card.hash) is not None:
        raise _Bad("card", "duplicate_member", f"duplicate: {shown} is already a member at HQ",
                   last4=last4)
    if CardState.get_or_none(CardState.card_hash == row.card.hash) is not None:
        raise _Bad("card", "duplicate_retired",
                   f"duplicate: {shown} was retired at HQ (lost or merged)", last4=last4)
    cards[row.card.hash] = row.line
    phone, last4 = row.profile.phone_hash, row.profile.phone_last4
    if phone is not None:
        if phone in phones:
            raise _Bad("phone", "duplicate_in_file", f"duplicate: phone ending {last4} is also "
                       f"on line {phones[phone]}", last4=last4, other_line=phones[phone])
        if Member.get_or_none(Member.phone_hash == phone) is not None:
            raise _Bad("phone", "duplicate_member", f"duplicate: phone ending {last4} is "
                       "already registered at HQ", last4=last4)
        phones[phone] = row.line


def _row(line: int, record: dict[str, str], rules: Rules, card_key: bytes,
         now: datetime) -> ImportRow:
    value = {name: (record.get(name) or "").strip() for name in COLUMNS}
    try:
        card = member_ref(card_key, value["card"])
    except Refused as exc:
        code = ("payment_card" if isinstance(exc, PaymentCardRefused)
                else "missing" if not value["card"] else "invalid")
        raise _Bad("card", code, f"card: {exc}") from None
    tiers = ", ".join(level.name for level in rules.tiers)
    if value["tier"] not in {level.name for level in rules.tiers}:
        raise _Bad("tier", "unknown", f"tier {value['tier']!r} is not one of {tiers}",
                   value=value["tier"], tiers=tiers)
    if not value["points"].isdigit() or int(value["points"]) > MAX_ADJUST:
        raise _Bad("points", "invalid", f"points {value['points']!r} is not a whole number "
                   f"from 0 to {MAX_ADJUST}", value=value["points"], max=MAX_ADJUST)
    name = value["name"]
    if len(name) > 64 or not name.isprintable():
        raise _Bad("name", "invalid", "name must be printable text of at most 64 characters")
    phone = value["phone"]
    if phone and not PHONE.fullmatch(phone):
        raise _Bad("phone", "invalid", f"phone {phone!r} is not 5 to 15 digits", value=phone)
    today = now.astimezone(rules.zone).date()
    birthday = _date(value["birthday"], "birthday")
    if birthday is not None and not date(1900, 1, 1) <= birthday <= today:
        raise _Bad("birthday", "not_past", f"birthday {birthday} is not a past date",
                   value=birthday)
    expires = _date(value["expires"], "expires")
    if expires is not None and expires <= today:
        raise _Bad("expires", "not_future", f"expires {expires} is not a future date",
                   value=expires)
    store = value["store"] or None
    if store is not None:
        try:
            check_id(store, "store")
        except TopicError as exc:
            raise _Bad("store", "invalid", str(exc), value=store) from None
    return ImportRow(
        line, card, value["tier"], int(value["points"]),
        Profile(name, birthday.isoformat() if birthday else None,
                phone_hash(card_key, phone) if phone else None, phone[-4:] if phone else ""),
        datetime.combine(expires, time.min, rules.zone) if expires else None, store)


def _date(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Bad(what, "not_date", f"{what} {text!r} is not a date (YYYY-MM-DD)",
                   value=text) from None
