"""Version 20: the members near the next tier read from index ranges alone, today and at the
last month starts (issue 13), kept by ``terminal.hq.rollup`` (a database rolled up before is
rolled up again).

- ``agg_member`` gains ``tier``: on the chain's row (store ``''``), the member's tier as
  ``member`` holds it, so the members of a tier whose kept spend lies in a band below the next
  tier are one range of the index ``agg_member_by_tier`` (store, tier, window_fen, member);
- ``agg_member_window``: per member and month start (the last few, ``rollup.MONTH_STARTS``) its
  counted spend in the tier window ending there and its tier (rows whose spend is not 0), with
  the index ``agg_member_window_by_tier`` (end_day, tier, fen, member): a report whose ``to`` is
  a month start reads its members near the next tier as it reads today's;
- ``agg_tier_changed`` queues, by trigger, a member whose ``member.tier`` changes (at a till's
  sale, a tier review, an HQ merge): the next catch-up copies its tier into both.
"""

from __future__ import annotations

from peewee import Database

from terminal.hq.migrations import apply, queue_on_update

COLUMNS = (("agg_member", "tier", "TEXT"),)
STATEMENTS = (
    "DROP INDEX IF EXISTS agg_member_by_window",
    """CREATE INDEX IF NOT EXISTS agg_member_by_tier
        ON agg_member (store, tier, window_fen, member)""",
    """CREATE TABLE IF NOT EXISTS agg_member_window (member TEXT NOT NULL,
        end_day INTEGER NOT NULL, tier TEXT NOT NULL, fen BIGINT NOT NULL,
        PRIMARY KEY (member, end_day))""",
    """CREATE INDEX IF NOT EXISTS agg_member_window_by_tier
        ON agg_member_window (end_day, tier, fen, member)""",
    "CREATE TABLE IF NOT EXISTS agg_tier_changed (member TEXT NOT NULL)",
)
INSERT = "INSERT INTO agg_tier_changed (member) VALUES (NEW.id)"


def both(db: Database) -> None:
    apply(db, COLUMNS, STATEMENTS)
    queue_on_update(db, trigger="member_agg_tier", function="posterm_agg_tier", table="member",
                    columns="tier", when="OLD.tier IS DISTINCT FROM NEW.tier", insert=INSERT)
