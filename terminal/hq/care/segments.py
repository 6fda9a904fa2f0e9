"""The segments a campaign goes to, each member with what its message says about them.

Run with the models bound to HQ's database. ``now`` is HQ's time; days are the chain's (the
rules' zone). Every segment leaves out members whose data was erased and cards HQ retired
(replaced or merged away): they receive nothing.

- ``birthday``: members whose birthday falls within the next ``days`` days (today included; 29
  February is the 28th in a common year), with the rules' birthday multiplier and its window;
- ``expiring``: members with points in lots expiring within ``days`` days: the points and the
  first of those days;
- ``next_tier``: members whose qualifying spend (the rules' tier window ending tonight) is at
  least 90% of the next tier's and below it (``analytics.near_next_tier``): the spend to go;
- ``dormant``: members whose last sale not wholly refunded is ``days`` days or more before today
  (``report analytics``' dormant, 90 by default; ``analytics.dormant_members``), with their balance.

Each segment is chain-wide, or one store's members: those whose home store is that store
(``member_home``: the store where they registered, until HQ moves them; the store a store
manager sees them in, and ``report analytics --store``'s members). The segment is reckoned on
the member's whole chain-wide record (a store's dormant members bought nowhere in the chain for
``days`` days), then kept to the store's members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from terminal.hq.analytics import Period, dormant_members, near_tier
from terminal.hq.member_ids import among
from terminal.hq.models import MemberHome, MemberOp
from terminal.loyalty.calendar import local_day
from terminal.loyalty.clock import from_micros, to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.card_states import RETIRED
from terminal.loyalty.store.models import CardState, Lot, Member

WINDOWS = {"day": "当天", "week": "前后三天", "month": "当月"}


class SegmentError(ValueError):
    """A segment asked with parameters it cannot take."""


@dataclass(frozen=True)
class Target:
    member: str
    fields: dict[str, str]  # the template's fields about this member


@dataclass(frozen=True)
class Segment:
    name: str
    default_days: int
    select: Callable[[Rules, int, datetime], list[Target]]


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def excluded() -> set[str]:
    """Members who receive nothing: erased (their newest profile operation is an erasure) or on
    a retired card."""
    last: dict[str, str] = {}
    for member, kind in (MemberOp.select(MemberOp.member, MemberOp.kind)
                         .where(MemberOp.kind.in_(("edit", "erase"))).order_by(MemberOp.seq)
                         .tuples()):
        last[member] = kind
    gone = {member for member, kind in last.items() if kind == "erase"}
    retired = (Member.select(Member.id).join(CardState, on=(CardState.card_hash
                                                            == Member.card_hash))
               .where(CardState.state == RETIRED))
    return gone | {member for (member,) in retired.tuples()}


def is_excluded(member_id: str) -> bool:
    """:func:`excluded` for one member."""
    last = (MemberOp.select(MemberOp.kind).where((MemberOp.member == member_id)
                                                  & MemberOp.kind.in_(("edit", "erase")))
            .order_by(MemberOp.seq.desc()).first())
    if last is not None and last.kind == "erase":
        return True
    return (CardState.select().join(Member, on=(CardState.card_hash == Member.card_hash))
            .where((Member.id == member_id) & (CardState.state == RETIRED)).exists())


def _members(ids: set[str]) -> dict[str, Any]:
    """id -> (name, balance, tier) of those of ``ids`` not excluded."""
    db = Member._meta.database
    condition, param = among(db, "id", ids)
    gone = excluded()
    rows = db.execute_sql(f"SELECT id, name, balance, tier FROM {Member._meta.table_name} "
                          f"WHERE {condition}", (param,)).fetchall()
    return {row[0]: row[1:] for row in rows if row[0] not in gone}


def _anniversary(birthday: date, today: date) -> date:
    for year in (today.year, today.year + 1):
        try:
            when = date(year, birthday.month, birthday.day)
        except ValueError:  # 29 February in a common year
            when = date(year, 2, 28)
        if when >= today:
            return when
    raise AssertionError("unreachable")


def birthday(rules: Rules, days: int, now: datetime) -> list[Target]:
    rule = rules.earn.birthday
    if rule is None:
        raise SegmentError("the rules have no birthday multiplier ([earn.birthday]): a "
                           "birthday greeting would name none")
    today = local_day(now, rules.zone)
    found = {}
    for member_id, text in (Member.select(Member.id, Member.birthday)
                            .where(Member.birthday.is_null(False)).tuples()):
        when = _anniversary(date.fromisoformat(text), today)
        if (when - today).days < days:
            found[member_id] = when
    members = _members(set(found))
    return [Target(member_id, {"name": name, "points": str(balance), "tier": tier,
                               "date": found[member_id].isoformat(),
                               "multiplier": _number(rule.multiplier),
                               "window": WINDOWS.get(rule.window, rule.window)})
            for member_id, (name, balance, tier) in sorted(members.items())]


_QUARTER_US = 900_000_000  # a zone's offset is whole quarter hours (today's zones, all of them)


def _day_of(zone: Any) -> Callable[[int], str]:
    """The local day (ISO) of a moment in µs, each quarter hour reckoned once: a campaign to
    the whole chain names 100,000 expiry moments, and a zone conversion each was a tenth of
    queueing it (bench/bench_care.py)."""
    days: dict[int, str] = {}

    def day(us: int) -> str:
        quarter = us // _QUARTER_US
        found = days.get(quarter)
        if found is None:
            found = days[quarter] = local_day(from_micros(us), zone).isoformat()
        return found
    return day


def expiring(rules: Rules, days: int, now: datetime) -> list[Target]:
    db = Lot._meta.database
    rows = db.execute_sql(
        f"SELECT {Lot.member.column_name}, SUM(remaining), MIN(expires_us) FROM "
        f"{Lot._meta.table_name} WHERE remaining > 0 AND expires_us >= {db.param} AND "
        f"expires_us < {db.param} GROUP BY {Lot.member.column_name}",
        (to_micros(now), to_micros(now + timedelta(days=days)))).fetchall()
    found = {member: (int(points), int(first)) for member, points, first in rows}
    members = _members(set(found))
    day = _day_of(rules.zone)
    return [Target(member_id, {
        "name": name, "points": str(found[member_id][0]), "tier": tier,
        "date": day(found[member_id][1])})
        for member_id, (name, _, tier) in sorted(members.items())]


def _today(rules: Rules, now: datetime) -> Period:
    """Today as the analytics' period (its sales: every one before tomorrow)."""
    today = local_day(now, rules.zone)
    return Period(today, today + timedelta(days=1), rules.zone)


def next_tier(rules: Rules, days: int, now: datetime) -> list[Target]:
    """(``days`` is not used: the window is the rules' tier window.)"""
    period = _today(rules, now)
    names = {level.name: level for level in rules.tiers}
    near = near_tier(rules, period, None)
    members = _members({member for member, _, _ in near})
    return [Target(member, {"name": members[member][0], "points": str(members[member][1]),
                            "tier": tier,
                            "spend_yuan": _yuan(names[tier].qualify_spend_fen - spend)})
            for member, tier, spend in sorted(near) if member in members]


def dormant(rules: Rules, days: int, now: datetime) -> list[Target]:
    period = _today(rules, now)
    # Today - last sale's day >= days: no counted sale from the day days - 1 before today on,
    # which is the analytics' dormancy (counted from tomorrow) of days + 1.
    found = dict(dormant_members(period, None, days + 1))
    members = _members(set(found))
    return [Target(member_id, {
        "name": name, "points": str(balance), "tier": tier,
        "date": period.day(found[member_id]).isoformat()})
        for member_id, (name, balance, tier) in sorted(members.items())]


SEGMENTS: dict[str, Segment] = {segment.name: segment for segment in (
    Segment("birthday", 7, birthday),
    Segment("expiring", 30, expiring),
    Segment("next_tier", 0, next_tier),
    Segment("dormant", 90, dormant),
)}


def stores() -> list[str]:
    """The stores some member is at home in, in order (what a campaign may be kept to)."""
    return [store for (store,) in MemberHome.select(MemberHome.store).distinct()
            .order_by(MemberHome.store).tuples()]


def check_store(store: str | None) -> None:
    """Refuse a store no member is at home in (a typo would make an empty campaign)."""
    if store is not None and not MemberHome.select().where(MemberHome.store == store).exists():
        raise SegmentError(f"no member is at home in store {store!r}")


def select(rules: Rules, name: str, days: int | None, now: datetime,
           store: str | None = None) -> list[Target]:
    """The members of segment ``name`` now (``days``: None for its default), chain-wide or
    (``store``) those at home in that store."""
    segment = SEGMENTS.get(name)
    if segment is None:
        raise SegmentError(f"no segment {name!r}; known: {', '.join(SEGMENTS)}")
    days = segment.default_days if days is None else days
    if name != "next_tier" and not 1 <= days <= 366:
        raise SegmentError(f"days {days}: from 1 to 366")
    check_store(store)
    found = segment.select(rules, days, now)
    if store is None:
        return found
    home = {member for (member,) in MemberHome.select(MemberHome.member)
            .where(MemberHome.store == store).tuples()}
    return [target for target in found if target.member in home]
