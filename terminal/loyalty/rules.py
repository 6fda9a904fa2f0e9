"""The chain's loyalty rules, parsed from the mapping HQ authors (``rules.toml``).

Every value is checked for type and range, and a bad one raises :class:`RulesError` naming the
key. Keys this version does not know are accepted (HQ may add keys; none may change meaning) and
listed in ``Rules.unknown_keys`` so an operator can see them.

Multipliers are exact: a TOML ``1.2`` becomes ``Fraction(6, 5)`` through its decimal text.
Datetimes may be TOML datetimes or ISO 8601 strings (as in a signed JSON bundle); both must carry
a zone.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from terminal.loyalty.errors import RulesError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUNDINGS = ("floor", "round", "ceil")


@dataclass(frozen=True)
class Promotion:
    name: str
    multiplier: Fraction
    starts: datetime | None  # inclusive
    ends: datetime | None  # exclusive
    weekdays: tuple[int, ...]  # 0 = Monday; empty means every day


@dataclass(frozen=True)
class Birthday:
    multiplier: Fraction
    window: str  # day | week | month


@dataclass(frozen=True)
class Earn:
    points_per_yuan: Fraction
    basis: str
    min_sale_fen: int
    exclude_categories: frozenset[str]
    rounding: str
    categories: dict[str, Fraction]
    sku_points: dict[str, int]
    promotions: tuple[Promotion, ...]
    birthday: Birthday | None
    cap_per_sale: int | None
    cap_per_member_per_day: int | None
    bonus_registration: int
    bonus_referral: int


@dataclass(frozen=True)
class Tier:
    name: str
    qualify_spend_fen: int
    earn_multiplier: Fraction
    discount_percent: int


@dataclass(frozen=True)
class Goods:
    sku: str
    name: str
    points: int
    per_sale_limit: int | None
    per_member_limit: int | None


@dataclass(frozen=True)
class Redeem:
    points_per_yuan: int
    min_points: int
    step_points: int
    max_percent_of_sale: int
    per_member_per_day: int | None
    offline_allowance: int
    goods: dict[str, Goods]


@dataclass(frozen=True)
class Expiry:
    policy: str  # months_after_earn | end_of_next_year | never
    months: int
    remind_days: int


@dataclass(frozen=True)
class Refund:
    reverse_earned: bool
    restore_redeemed: bool


@dataclass(frozen=True)
class Rules:
    name: str
    zone: ZoneInfo
    earn: Earn
    tier_window_months: int
    tiers: tuple[Tier, ...]  # ascending by qualify_spend_fen; the first qualifies at 0
    redeem: Redeem
    expiry: Expiry
    refund: Refund
    unknown_keys: tuple[str, ...] = field(default=())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Rules:
        return _parse(_Reader(data, "", []))

    def tier(self, name: str) -> Tier:
        for level in self.tiers:
            if level.name == name:
                return level
        raise RulesError(f"tiers.level: no tier named {name!r}", "no_tier_named",
                         key="tiers.level", name=name)


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules TOML file; errors name the file and the key."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Rules.from_mapping(data)
    except RulesError as exc:
        raise RulesError(f"{path}: {exc}", exc.code, **exc.values) from exc


_MISSING = object()


class _Reader:
    """Reads one table, remembering which keys were used so the rest can be reported."""

    def __init__(self, data: Any, where: str, unknown: list[str]) -> None:
        if not isinstance(data, Mapping):
            raise RulesError(f"{where or 'rules'}: expected a table", "table", key=where or "rules")
        self.data = data
        self.where = where
        self.used: set[str] = set()
        self.unknown = unknown

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise RulesError(f"{self.key(name)}: missing", "missing", key=self.key(name))
        return default

    def int(self, name: str, default: Any = _MISSING, lo: int = 0, hi: int = 10**12) -> Any:
        value = self.raw(name, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise RulesError(f"{self.key(name)}: expected a whole number, got {value!r}", "whole",
                             key=self.key(name), got=repr(value))
        if not lo <= value <= hi:
            raise RulesError(f"{self.key(name)}: {value} is outside {lo}..{hi}", "range",
                             key=self.key(name), value=str(value), lo=str(lo), hi=str(hi))
        return value

    def str(self, name: str, default: Any = _MISSING, choices: tuple[str, ...] = ()) -> Any:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value.strip():
            raise RulesError(f"{self.key(name)}: expected text, got {value!r}", "text",
                             key=self.key(name), got=repr(value))
        if choices and value not in choices:
            raise RulesError(f"{self.key(name)}: {value!r} is not one of {', '.join(choices)}",
                             "choice", key=self.key(name), value=repr(value),
                             choices=", ".join(choices))
        return value

    def bool(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise RulesError(f"{self.key(name)}: expected true or false, got {value!r}", "bool",
                             key=self.key(name), got=repr(value))
        return value

    def ratio(self, name: str, default: Any = _MISSING, lo: int = 0, hi: int = 1000) -> Fraction:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float | str | Fraction):
            raise RulesError(f"{self.key(name)}: expected a number, got {value!r}", "number",
                             key=self.key(name), got=repr(value))
        try:
            # str() of a float is its shortest decimal text, so 1.2 becomes exactly 6/5.
            exact = value if isinstance(value, Fraction) else Fraction(Decimal(str(value)))
        except (InvalidOperation, ValueError) as exc:
            raise RulesError(f"{self.key(name)}: {value!r} is not a number", "number",
                             key=self.key(name), got=repr(value)) from exc
        if not lo <= exact <= hi:
            raise RulesError(f"{self.key(name)}: {value} is outside {lo}..{hi}", "range",
                             key=self.key(name), value=str(value), lo=str(lo), hi=str(hi))
        return exact

    def time(self, name: str) -> datetime | None:
        value = self.raw(name, None)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise RulesError(f"{self.key(name)}: {value!r} is not an ISO 8601 time",
                                 "iso_time", key=self.key(name), got=repr(value)) from exc
        if not isinstance(value, datetime):
            raise RulesError(f"{self.key(name)}: expected a date and time, got {value!r}",
                             "datetime", key=self.key(name), got=repr(value))
        if value.tzinfo is None:
            raise RulesError(f"{self.key(name)}: the time {value.isoformat()} carries no zone",
                             "zoneless", key=self.key(name), time=value.isoformat())
        return value

    def list(self, name: str) -> list[Any]:
        value = self.raw(name, [])
        if not isinstance(value, list):
            raise RulesError(f"{self.key(name)}: expected a list, got {value!r}", "list",
                             key=self.key(name), got=repr(value))
        return value

    def table(self, name: str, required: bool = True) -> _Reader | None:
        value = self.raw(name, _MISSING if required else None)
        if value is None:
            return None
        return _Reader(value, self.key(name), self.unknown)

    def tables(self, name: str) -> list[_Reader]:
        return [
            _Reader(item, f"{self.key(name)}[{i}]", self.unknown)
            for i, item in enumerate(self.list(name))
        ]

    def done(self) -> None:
        self.unknown.extend(self.key(k) for k in self.data if k not in self.used)


def _parse(top: _Reader) -> Rules:
    program = top.table("program")
    assert program is not None
    zone_name = program.str("timezone")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RulesError(f"program.timezone: unknown zone {zone_name!r}", "zone",
                         key="program.timezone", zone=repr(zone_name)) from exc
    name = program.str("name")
    program.done()
    earn = _parse_earn(top)
    tiers_window, tiers = _parse_tiers(top)
    redeem = _parse_redeem(top)
    expiry = _parse_expiry(top)
    refund_t = top.table("refund")
    assert refund_t is not None
    refund = Refund(refund_t.bool("reverse_earned"), refund_t.bool("restore_redeemed"))
    refund_t.done()
    top.done()
    return Rules(
        name=name,
        zone=zone,
        earn=earn,
        tier_window_months=tiers_window,
        tiers=tiers,
        redeem=redeem,
        expiry=expiry,
        refund=refund,
        unknown_keys=tuple(top.unknown),
    )


def _parse_earn(top: _Reader) -> Earn:
    t = top.table("earn")
    assert t is not None
    categories: dict[str, Fraction] = {}
    for c in t.tables("category"):
        categories[c.str("category")] = c.ratio("multiplier")
        c.done()
    sku_points: dict[str, int] = {}
    for s in t.tables("sku"):
        sku_points[s.str("sku")] = s.int("fixed_points", hi=10**7)
        s.done()
    promotions = []
    for p in t.tables("promotion"):
        days = p.list("weekdays")
        for d in days:
            if d not in WEEKDAYS:
                raise RulesError(f"{p.key('weekdays')}: {d!r} is not one of {', '.join(WEEKDAYS)}",
                                 "choice", key=p.key("weekdays"), value=repr(d),
                                 choices=", ".join(WEEKDAYS))
        starts, ends = p.time("from"), p.time("to")
        if starts and ends and ends <= starts:
            raise RulesError(f"{p.key('to')}: ends at or before it starts", "ends_first",
                             key=p.key("to"))
        promotions.append(
            Promotion(
                name=p.str("name"),
                multiplier=p.ratio("multiplier"),
                starts=starts,
                ends=ends,
                weekdays=tuple(sorted(WEEKDAYS.index(d) for d in days)),
            )
        )
        p.done()
    birthday = None
    b = t.table("birthday", required=False)
    if b is not None:
        window = b.str("window", choices=("day", "week", "month"))
        birthday = Birthday(b.ratio("multiplier"), window)
        b.done()
    caps = t.table("caps", required=False)
    cap_sale = cap_day = None
    if caps is not None:
        cap_sale = caps.int("per_sale", None)
        cap_day = caps.int("per_member_per_day", None)
        caps.done()
    bonus = t.table("bonus", required=False)
    reg = ref = 0
    if bonus is not None:
        reg = bonus.int("registration", 0, hi=10**7)
        ref = bonus.int("referral", 0, hi=10**7)
        bonus.done()
    excluded = t.list("exclude_categories")
    if not all(isinstance(c, str) for c in excluded):
        raise RulesError(f"{t.key('exclude_categories')}: expected a list of category names",
                         "category_names", key=t.key("exclude_categories"))
    earn = Earn(
        points_per_yuan=t.ratio("points_per_yuan"),
        basis=t.str("basis", choices=("paid", "list")),
        min_sale_fen=t.int("min_sale_fen", 0),
        exclude_categories=frozenset(excluded),
        rounding=t.str("rounding", choices=ROUNDINGS),
        categories=categories,
        sku_points=sku_points,
        promotions=tuple(promotions),
        birthday=birthday,
        cap_per_sale=cap_sale,
        cap_per_member_per_day=cap_day,
        bonus_registration=reg,
        bonus_referral=ref,
    )
    t.done()
    return earn


def _parse_tiers(top: _Reader) -> tuple[int, tuple[Tier, ...]]:
    t = top.table("tiers")
    assert t is not None
    window = t.int("window_months", lo=1, hi=120)
    t.str("review", "monthly", choices=("monthly",))
    levels = []
    for lv in t.tables("level"):
        levels.append(
            Tier(
                name=lv.str("name"),
                qualify_spend_fen=lv.int("qualify_spend_fen"),
                earn_multiplier=lv.ratio("earn_multiplier"),
                discount_percent=lv.int("discount_percent", 0, hi=100),
            )
        )
        lv.done()
    t.done()
    if not levels:
        raise RulesError("tiers.level: at least one tier is needed", "no_tiers", key="tiers.level")
    levels.sort(key=lambda lv: lv.qualify_spend_fen)
    if levels[0].qualify_spend_fen != 0:
        raise RulesError("tiers.level: the lowest tier must qualify at 0 fen", "lowest_tier",
                         key="tiers.level")
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise RulesError("tiers.level: tier names must be unique", "tier_names",
                         key="tiers.level")
    return window, tuple(levels)


def _parse_redeem(top: _Reader) -> Redeem:
    t = top.table("redeem")
    assert t is not None
    goods: dict[str, Goods] = {}
    for g in t.tables("goods"):
        item = Goods(
            sku=g.str("sku"),
            name=g.str("name"),
            points=g.int("points", lo=1),
            per_sale_limit=g.int("per_sale_limit", None, lo=1),
            per_member_limit=g.int("per_member_limit", None, lo=1),
        )
        goods[item.sku] = item
        g.done()
    redeem = Redeem(
        points_per_yuan=t.int("points_per_yuan", lo=1),
        min_points=t.int("min_points", 0),
        step_points=t.int("step_points", 1, lo=1),
        max_percent_of_sale=t.int("max_percent_of_sale", 100, hi=100),
        per_member_per_day=t.int("per_member_per_day", None),
        offline_allowance=t.int("offline_allowance", 0),
        goods=goods,
    )
    if redeem.step_points * 100 % redeem.points_per_yuan:
        # Every redemption is a whole number of steps: each step must be worth whole fen, or
        # the same points would be worth different amounts by how they were split.
        raise RulesError(
            f"redeem.step_points ({redeem.step_points}) is not worth a whole number of fen at "
            f"redeem.points_per_yuan ({redeem.points_per_yuan}): step_points x 100 must be a "
            "multiple of points_per_yuan", "step_fen", key="redeem.step_points",
            step=str(redeem.step_points), per_yuan=str(redeem.points_per_yuan))
    t.done()
    return redeem


def _parse_expiry(top: _Reader) -> Expiry:
    t = top.table("expiry")
    assert t is not None
    policy = t.str("policy", choices=("months_after_earn", "end_of_next_year", "never"))
    months = t.int("months", 12, lo=1, hi=1200)
    remind = t.int("remind_days", 30, hi=3660)
    t.done()
    return Expiry(policy, months, remind)
