"""Version 28: each member's spend in the tier window ending on any day (issue 13), kept by
``terminal.hq.rollup`` (built from ``agg_member_day`` by the first catch-up after this version,
without rolling the rest up again).

``agg_member_span``: per member, the runs of window ends over which its counted spend in the
tier window (``rollup.Spans``: the rules' ``window_months``) stays the same: a row holds the
spend ``fen`` (only when above 0) for every ``to`` (a local day number, the window's end) in
[``from_end``, ``to_end``), with the member's tier as ``member`` holds it. The spend changes only
on the day after a day with a sale (it comes in) and on the day that day leaves the window, so a
member has at most two rows a day with a sale. The members near the next tier at any ``to`` are
then, per tier, one range of the index ``agg_member_span_by_tier`` (tier, fen, from_end, to_end,
member): the rows of the band [90% of the next tier's spend, it), those whose run holds ``to``.
"""

from __future__ import annotations

from peewee import Database


def both(db: Database) -> None:
    db.execute_sql("""CREATE TABLE IF NOT EXISTS agg_member_span (member TEXT NOT NULL,
        from_end INTEGER NOT NULL, to_end INTEGER NOT NULL, fen BIGINT NOT NULL,
        tier TEXT NOT NULL, PRIMARY KEY (member, from_end))""")
    db.execute_sql("""CREATE INDEX IF NOT EXISTS agg_member_span_by_tier
        ON agg_member_span (tier, fen, from_end, to_end, member)""")
