"""Version 18: on PostgreSQL the member table leaves half of each page free (fillfactor 50), so
an update of a member's balance stays on its page (a HOT update) and writes none of the table's
five indexes.

The expiry sweep takes points from every member with a lot due, a chunk of members a statement:
on full pages none of those updates could stay on its page (100,000 members swept: 137 HOT
updates of 100,000, pg_stat_user_tables), so each wrote a new entry in every index of member
(1.57 s of a 7.5 s sweep); with fillfactor 50, 100,000 of 100,000 were HOT and the updates took
0.37 s (bench/sweep_probe.py; fillfactor 90 left 12,376 HOT and no gain: the sweep updates
nearly every row of a page at once when many lots come due together). The table takes about
twice the pages. A fillfactor applies to pages filled from now on: a database made before this
version keeps its full pages until the table is rewritten (VACUUM FULL member, or pg_repack
without the exclusive lock). A lot's update cannot be HOT whatever its fillfactor: ``remaining``
is in the predicate of the open-lot indexes. SQLite has no fillfactor.
"""

from __future__ import annotations

from peewee import Database

from terminal.loyalty.store.models import Member


def sqlite(db: Database) -> None:
    """Nothing: SQLite has no fillfactor (and one writer per shop)."""


def postgresql(db: Database) -> None:
    db.execute_sql(f"ALTER TABLE {Member._meta.table_name} SET (fillfactor = 50)")
