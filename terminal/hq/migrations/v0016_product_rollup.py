"""Version 16: ``agg_sku_day``, the reports' roll-up of member sales by product (issue 13).

Per local day, store, product and category: the units and paid fen of the counted member sales
(less what refunds brought back; a sale wholly refunded, whenever, is not there) and a name of
the product, so ``report analytics``' top products and categories read a month's rows of it.
``terminal.hq.rollup`` computes a day's rows again whenever a sale of that day is new or has a
new refund; a database rolled up before this version is rolled up again from the ledger.
"""

from __future__ import annotations

from peewee import Database


def both(db: Database) -> None:
    db.execute_sql("""CREATE TABLE IF NOT EXISTS agg_sku_day (day INTEGER NOT NULL,
        store TEXT NOT NULL, sku TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL,
        qty BIGINT NOT NULL, fen BIGINT NOT NULL, PRIMARY KEY (day, store, sku, category))""")
    db.execute_sql("CREATE INDEX IF NOT EXISTS agg_sku_day_by_store ON agg_sku_day (store, day)")
