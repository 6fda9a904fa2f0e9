"""Calendar arithmetic in the programme's zone: months, days, reviews, expiry dates."""

from __future__ import annotations

import calendar as _cal
from datetime import date, datetime
from zoneinfo import ZoneInfo

from terminal.loyalty.rules import Expiry


def add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, keeping the wall-clock time; the 31st becomes the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, _cal.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def month_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """00:00 on the 1st of the month of ``moment`` in the programme's zone (the tier review)."""
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone)


def lot_expiry(earned: datetime, rules: Expiry, zone: ZoneInfo) -> datetime | None:
    """When a lot earned at ``earned`` expires (exclusive); None if lots never expire."""
    local = earned.astimezone(zone)
    if rules.policy == "months_after_earn":
        return add_months(local, rules.months)
    if rules.policy == "end_of_next_year":
        return datetime(local.year + 2, 1, 1, tzinfo=zone)
    return None


def birthday_in_window(birthday: date, day: date, window: str) -> bool:
    """Whether ``day`` is the member's birthday: the day itself, the 7 days centred on it
    (3 either side, ``week``), or its calendar month (``month``). 29 February counts as the
    28th in a common year."""
    month, dom = birthday.month, birthday.day
    if window == "month":
        return day.month == month
    this_year = [
        date(y, month, min(dom, _cal.monthrange(y, month)[1])) for y in (day.year - 1, day.year,
                                                                        day.year + 1)
    ]
    reach = 0 if window == "day" else 3
    return any(abs((day - b).days) <= reach for b in this_year)

