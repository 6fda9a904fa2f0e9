"""Version 21: what the console's dashboard reads besides the analytics, at a million members
(issue 13), kept by ``terminal.hq.rollup`` (a database rolled up before is rolled up again).

- ``agg_sale_day``: per local day and store, the member sales rung up (how many, paid fen;
  refunds not taken off): the dashboard's sales per day, from the rows of the period's days
  rather than every sale;
- ``member_by_registered`` (registered_us): the new members per day and in a period, a range
  of it rather than every member;
- ``member_by_tier`` (tier): members per tier counted from the index alone.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import apply

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS agg_sale_day (day INTEGER NOT NULL, store TEXT NOT NULL,
        sales BIGINT NOT NULL, fen BIGINT NOT NULL, PRIMARY KEY (day, store))""",
    "CREATE INDEX IF NOT EXISTS member_by_registered ON member (registered_us)",
    "CREATE INDEX IF NOT EXISTS member_by_tier ON member (tier)",
)


def both(db: Database) -> None:
    apply(db, statements=STATEMENTS)
