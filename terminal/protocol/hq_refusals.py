"""HQ's refusals of a till's member request, by code: the one table of what HQ may say.

A refused lookup, hold or void (``MemberResponse`` with ``ok`` false) carries ``error``, HQ's
English sentence (the log, an English till), and, to a till that asked for them
(``MemberRequest.codes``), ``code`` (one of :data:`ENGLISH`'s keys) and ``values`` (the
sentence's facts by name, ints and strings), from which a till words the refusal in its own
language (terminal.app.refusal_words.HQ_ZH). HQ builds each refusal with :func:`refusal`, so
the English and the values cannot say different things.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Each code and HQ's English words for it ({name}: a value of the refusal's ``values``).
ENGLISH: dict[str, str] = {
    "member.form": "member must be a card hash (64 hex digits)",
    "member.unknown": "unknown member",
    "card.frozen": "card frozen at HQ: {reason}",
    "card.retired": "card retired at HQ: {reason}",
    "hold.points": "insufficient points: {available} available",
    "redeem.per_member_per_day": ("a hold of {points} is more than a member may redeem in a "
                                  "day ({cap})"),
    "holds.max_per_till": "holds.max_per_till: the till has {count} holds pending",
    "holds.max_points_per_till": ("holds.max_points_per_till: the till holds {held} points; "
                                 "{points} more is over {cap}"),
    "holds.max_per_member": "holds.max_per_member: the member has {count} holds pending",
    "holds.max_per_till_member_per_hour": ("holds.max_per_till_member_per_hour: the till asked "
                                          "{count} holds on the member in the last hour"),
    "hold.other_till": "the hold id belongs to another till",
    "hold.other_request": "the hold id was used for another member or other points",
    "hold.settled": "the hold was {state}",  # state: posted, voided
    "hold.unknown": "unknown hold",
    "hold.posted": "the hold is already posted by its sale",
    "hold.post": "holds are posted by the sale's event, not on request",
    "hq.database": "HQ's database failed: {problem}",  # problem: in the English only
    "request.malformed": "{problem}",  # problem: the parser's words, in the English only
}

ERROR_MAX = 200  # HQ's English sentence, at most (MemberResponse.error)
REASON_MAX = 160  # a reason HQ staff typed (a card's freezing), as a value

# Values that only the English carries: a database's or a parser's words are for the log, not
# for a cashier in another language (and may be long).
_ENGLISH_ONLY = frozenset({"problem"})


@dataclass(frozen=True)
class Refusal:
    """One refusal: its code, its values (what the wire carries) and its English sentence."""

    code: str
    values: dict[str, int | str] = field(default_factory=dict)
    error: str = ""


def refusal(code: str, **values: int | str) -> Refusal:
    """HQ's refusal ``code`` with its ``values``, its English sentence made from them (at most
    :data:`ERROR_MAX` characters). KeyError for a code not in :data:`ENGLISH`."""
    error = ENGLISH[code].format(**values)[:ERROR_MAX]
    wire = {name: value[:REASON_MAX] if isinstance(value, str) else value
            for name, value in values.items() if name not in _ENGLISH_ONLY}
    return Refusal(code, wire, error)
