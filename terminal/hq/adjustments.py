"""A till's manual adjustment, held against HQ's trust policy (issue 16, break 2).

HQ replayed an ``adjust`` event's points, reason and operator as given: three +10,000,000 events
minted 30 million points, and one took another store's member to -9,996,900. Now an adjustment
is applied only if the operator it names is a manager of the till's store in HQ's register
(:mod:`terminal.hq.policy`), it is within HQ's bound per adjustment and, with the member's other
till adjustments that HQ day, per member and day, and the member belongs to the till's store or
HQ grants that store the member's. Anything else is refused for good, with the rule named.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import fn

from terminal.hq.policy import TrustPolicy
from terminal.loyalty.calendar import local_day
from terminal.loyalty.clock import to_micros
from terminal.loyalty.errors import Refused
from terminal.loyalty.store.models import LedgerEntry

# How HQ files a till's adjustment: its reason ends "(at STORE/TERMINAL)" (chain_ledger), which
# tells it from HQ's own adjustments and overdraft entries.
TILL_MARK = " (at "


def check(policy: TrustPolicy, store: str, operator: str, points: int, home: str | None,
          used_today: int) -> None:
    """Raise :class:`Refused` unless ``policy`` lets ``store`` adjust a member of ``home`` by
    ``points``, approved by ``operator``, with ``used_today`` points adjusted already."""
    if not policy.is_manager(store, operator):
        raise Refused(f"HQ's register names no manager {operator!r} at {store}: an adjustment "
                      f"needs a manager of the till's store", "adjust.manager")
    rules = policy.adjust
    if home is not None and not rules.may_cross(store, home):
        raise Refused(f"the member belongs to {home}: HQ does not let {store} adjust another "
                      f"store's members", "adjust.cross_store")
    if abs(points) > rules.max_points:
        raise Refused(f"an adjustment of {points} is over HQ's limit of {rules.max_points} "
                      f"per adjustment", "adjust.max_points")
    if used_today + abs(points) > rules.max_per_member_per_day:
        raise Refused(f"the member's till adjustments today come to {used_today}; {abs(points)} "
                      f"more is over HQ's limit of {rules.max_per_member_per_day} a day",
                      "adjust.max_per_member_per_day")


def adjusted_today(member_id: str, at: datetime, zone: ZoneInfo) -> int:
    """The points, either way, of the member's till adjustments on ``at``'s day in ``zone``."""
    day = local_day(at, zone)
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = start + timedelta(days=1)
    total = (LedgerEntry.select(fn.COALESCE(fn.SUM(fn.ABS(LedgerEntry.points)), 0))
             .where((LedgerEntry.member == member_id) & (LedgerEntry.kind == "adjust")
                    & LedgerEntry.reason.contains(TILL_MARK)
                    & (LedgerEntry.wall_us >= to_micros(start))
                    & (LedgerEntry.wall_us < to_micros(end))).scalar())
    return int(total)
