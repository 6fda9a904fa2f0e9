"""Version 23: each member's month at each store and in the chain (issue 13), kept by
``terminal.hq.rollup`` (a database rolled up before is rolled up again).

``agg_member_month``: per member, store (``''``: the chain) and calendar month (the local day
number of its first day), the member's days with a counted sale, its last such day and its
spend: the member figures of a calendar month (the month-aligned reports, the dashboard's
months) read one row a purchaser from the index ``agg_member_month_by_store`` instead of
grouping the month's days by member.
"""

from __future__ import annotations

from peewee import Database


def both(db: Database) -> None:
    db.execute_sql("""CREATE TABLE IF NOT EXISTS agg_member_month (member TEXT NOT NULL,
        store TEXT NOT NULL, month INTEGER NOT NULL, days INTEGER NOT NULL,
        last_day INTEGER NOT NULL, fen BIGINT NOT NULL, PRIMARY KEY (member, store, month))""")
    db.execute_sql("""CREATE INDEX IF NOT EXISTS agg_member_month_by_store
        ON agg_member_month (store, month, days, last_day, fen)""")
