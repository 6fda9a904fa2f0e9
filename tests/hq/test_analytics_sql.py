"""The analytics' SQL day arithmetic: a time's local day computed by the database equals the
Python calendar's, across daylight-saving changes and in a zone without them (SQLite)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from terminal.hq.analytics_sql import day_expression
from terminal.loyalty.clock import to_micros

EPOCH_DAY = datetime(1970, 1, 1).date()


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin", "America/New_York"])
def test_sql_local_days_match_the_calendar_across_daylight_saving(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    moments = [start + timedelta(minutes=29 * n) for n in range(0, 2 * 366 * 50)]
    first, last = to_micros(moments[0]), to_micros(moments[-1])
    expression, params = day_expression(tz, first, last, "wall_us")
    if zone == "Asia/Shanghai":
        assert "CASE" not in expression  # one offset: plain arithmetic
    assert not any(char.isdigit() for char in expression.replace("wall_us", ""))  # bound
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (wall_us INTEGER)")
        db.executemany("INSERT INTO t VALUES (?)", [(to_micros(m),) for m in moments])
        days = [row[0] for row in db.execute(f"SELECT {expression} FROM t ORDER BY wall_us",
                                             params)]
    expected = [(m.astimezone(tz).date() - EPOCH_DAY).days for m in moments]
    assert days == expected
