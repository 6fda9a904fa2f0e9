"""Version 22: how many members bought first, and last, on each day (issue 13), kept by
``terminal.hq.rollup`` (a database rolled up before is rolled up again).

``agg_member_count``: per store (``''``: the chain) and local day, how many members' first
counted sale there is on that day (``firsts``) and how many members' last one (``lasts``): the
members with a sale before ``to``, the new purchasers of a period and the members gone quiet
before a dormancy cut are sums over a few hundred days' rows, not counts over every member's
row of ``agg_member``.
"""

from __future__ import annotations

from peewee import Database


def both(db: Database) -> None:
    db.execute_sql("""CREATE TABLE IF NOT EXISTS agg_member_count (store TEXT NOT NULL,
        day INTEGER NOT NULL, firsts BIGINT NOT NULL, lasts BIGINT NOT NULL,
        PRIMARY KEY (store, day))""")
