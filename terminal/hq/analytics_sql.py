"""The member analytics computed by the database (SQLite and PostgreSQL alike), so a chain of a
million members answers from a few aggregate queries rather than rows carried into Python.

Everything here follows :mod:`terminal.hq.analytics`'s definitions. Two pieces of SQL carry them:

- ``counted``: member sales before ``to`` with what refunds left of them (``net`` fen), those
  wholly refunded (every unit brought back) left out; the refunded quantities are summed only for
  sales that have a refund, so the sale lines are read for those alone;
- ``local day``: the day number of a time in the programme's zone, as integer arithmetic on the
  stored microseconds: ``(wall_us + offset) / 86400000000`` with the zone's offset, or a CASE over
  the offsets the zone had (daylight saving) in the period.

Only the period's sales are grouped by member; what needs a member's whole history (a first sale
before the period, dormancy) is answered through the ``(member, wall_us)`` index or by counting
members with a sale before a bound, never by carrying sales into Python.

With a store, a sale is the store's when the applied event whose sequence span holds it came
from that store (the first span ending at or after its ``seq``: one probe of the ``last_seq``
index per sale).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Database, PostgresqlDatabase

DAY_US = 86_400_000_000


def _offset_us(zone: ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset() or timedelta()
    return int(offset.total_seconds()) * 1_000_000


def day_expression(zone: ZoneInfo, first_us: int, end_us: int, column: str, param: str = "?"
                   ) -> tuple[str, list[int]]:
    """SQL giving ``column``'s (µs since the epoch, non-negative) local day number in ``zone``
    for times in [first_us, end_us] (the offsets the zone used there, found day by day), with
    ``param`` (the database's mark) where it takes each of the parameters it comes with."""
    start = datetime.fromtimestamp(first_us / 1e6, UTC) - timedelta(days=1)
    end = datetime.fromtimestamp(end_us / 1e6, UTC) + timedelta(days=1)
    segments: list[tuple[int, int]] = [(0, _offset_us(zone, start))]  # (from µs, offset µs)
    at = start
    while at <= end:
        after = at + timedelta(days=1)
        if _offset_us(zone, after) != segments[-1][1]:
            low, high = at, after  # the change is in (low, high]: bisect it to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if _offset_us(zone, middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            segments.append((int(high.timestamp()) * 1_000_000, _offset_us(zone, high)))
        at = after
    p = param
    plain = f"(({column} + {p}) / {p})"
    if len(segments) == 1:
        return plain, [segments[0][1], DAY_US]
    params: list[int] = []
    for (_, offset), (until, _) in pairwise(segments):
        params += [until, offset, DAY_US]
    cases = " ".join(f"WHEN {column} < {p} THEN {plain}" for _ in segments[1:])
    return f"(CASE {cases} ELSE {plain} END)", [*params, segments[-1][1], DAY_US]


def store_filter(db: Database, column: str) -> str:
    """SQL: true when the row at sequence ``column`` was written by the store given as the next
    parameter."""
    return (f"(SELECT a.store FROM applied_event a WHERE a.last_seq >= {column} "
            f"ORDER BY a.last_seq LIMIT 1) = {db.param}")


WHOLE = """SELECT r.sale_id FROM refund r JOIN refund_line rl ON rl.refund_id = r.id
    GROUP BY r.sale_id HAVING SUM(rl.qty) > 0
    AND SUM(rl.qty) >= (SELECT SUM(sl.qty) FROM sale_line sl WHERE sl.sale_id = r.sale_id)"""


def counted_where(db: Database, end_us: int, store: str | None, start_us: int | None = None,
                  alias: str = "s") -> tuple[str, list[Any]]:
    """The condition (and its parameters) on ``sale AS alias`` of a counted member sale before
    ``end_us`` (from ``start_us``; of ``store``)."""
    p, a = db.param, alias
    where = f"{a}.member_id IS NOT NULL AND {a}.wall_us < {p}"
    params: list[Any] = [end_us]
    if start_us is not None:
        where += f" AND {a}.wall_us >= {p}"
        params.append(start_us)
    if store is not None:
        where += " AND " + store_filter(db, f"{a}.seq")
        params.append(store)
    return f"{where} AND {a}.id NOT IN ({WHOLE})", params


def counted_sales(db: Database, end_us: int, store: str | None, start_us: int | None = None,
                  alias: str = "s") -> tuple[str, list[Any]]:
    """SQL (and its parameters) of the counted member sales before ``end_us`` (from
    ``start_us``): columns id, member_id, wall_us, net."""
    a = alias
    where, params = counted_where(db, end_us, store, start_us, alias)
    sql = f"""
        SELECT {a}.id, {a}.member_id, {a}.wall_us, {a}.paid_fen - COALESCE(b.fen, 0) AS net
        FROM sale {a}
        LEFT JOIN (SELECT r.sale_id, SUM(rl.fen) AS fen
                   FROM refund r JOIN refund_line rl ON rl.refund_id = r.id
                   GROUP BY r.sale_id) b ON b.sale_id = {a}.id
        WHERE {where}"""
    return sql, params


def segments(db: Database, zone: ZoneInfo, start_us: int, end_us: int, store: str | None,
             bounds: tuple[tuple[int, ...], ...]) -> list[tuple[Any, ...]]:
    """The period's purchasers grouped by RFM segment, from the period's counted sales only:
    (r, f, m, purchasers, repeat purchasers, new purchasers: none of their counted sales before
    the period)."""
    p = db.param
    day, day_params = day_expression(zone, start_us, end_us, "c.wall_us", p)
    end_day = (end_us + _offset_us(zone, datetime.fromtimestamp(end_us / 1e6, UTC))) // DAY_US
    sales, params = counted_sales(db, end_us, store, start_us, "c0")
    store_e = store_w = ""
    earlier_params: list[Any] = [start_us]
    whole_params: list[Any] = [start_us]
    if store is not None:
        store_e, store_w = " AND " + store_filter(db, "e.seq"), " AND " + store_filter(db, "w.seq")
        earlier_params.append(store)
        whole_params.append(store)
    scores, score_params = rfm_scores(db, end_day, bounds)
    # New purchasers: every sale before the period wholly refunded (each member's earlier
    # sales counted through the (member, wall_us) index, less its wholly refunded ones).
    sql = f"""
        SELECT {scores}, COUNT(*), SUM(CASE WHEN m.days >= 2 THEN 1 ELSE 0 END),
               SUM(CASE WHEN (SELECT COUNT(*) FROM sale e WHERE e.member_id = m.member_id
                                  AND e.wall_us < {p}{store_e}) = COALESCE(w.n, 0)
                        THEN 1 ELSE 0 END)
        FROM (SELECT c.member_id, COUNT(DISTINCT {day}) AS days, MAX({day}) AS last_in,
                     SUM(c.net) AS fen
              FROM ({sales}) c GROUP BY c.member_id) m
        LEFT JOIN (SELECT w.member_id, COUNT(*) AS n FROM sale w
                   WHERE w.id IN ({WHOLE}) AND w.wall_us < {p}{store_w}
                   GROUP BY w.member_id) w ON w.member_id = m.member_id
        GROUP BY 1, 2, 3"""
    return db.execute_sql(sql, [*score_params, *earlier_params, *day_params, *day_params,
                                *params, *whole_params]).fetchall()


def rfm_scores(db: Database, end_day: int, bounds: tuple[tuple[int, ...], ...]
               ) -> tuple[str, list[Any]]:
    """SQL of the three RFM scores of a member ``m`` (last_in: the day of its last sale, days:
    its days with a sale, fen: its spend) at ``end_day`` by the ``bounds`` (recency days,
    frequency days, monetary fen; four rising numbers each), and their parameters."""
    p = db.param
    recency_days, frequency_days, monetary_fen = bounds
    r = "5 - (" + " + ".join(f"CASE WHEN {p} < {p} - m.last_in THEN 1 ELSE 0 END"
                             for _ in recency_days) + ")"
    f = "1 + " + " + ".join(f"CASE WHEN {p} <= m.days THEN 1 ELSE 0 END"
                            for _ in frequency_days)
    m_ = "1 + " + " + ".join(f"CASE WHEN {p} <= m.fen THEN 1 ELSE 0 END" for _ in monetary_fen)
    params: list[Any] = []
    for bound in recency_days:
        params += [int(bound), int(end_day)]
    params += [int(bound) for bound in (*frequency_days, *monetary_fen)]
    return f"{r}, {f}, {m_}", params


def with_sales(db: Database, end_us: int, store: str | None, start_us: int | None = None
               ) -> int:
    """How many members have a counted sale before ``end_us`` (from ``start_us``)."""
    sales, params = counted_sales(db, end_us, store, start_us)
    sql = f"SELECT COUNT(*) FROM (SELECT c.member_id FROM ({sales}) c GROUP BY c.member_id) m"
    return int(db.execute_sql(sql, params).fetchone()[0])


def top_sold(db: Database, start_us: int, end_us: int, store: str | None, by: str, top: int
             ) -> list[tuple[Any, ...]]:
    """The ``top`` skus (``by="sku"``: sku, a name, qty, fen) or categories (category, qty,
    fen) among the period's counted member sales, by paid fen less refunds."""
    sales, params = counted_sales(db, end_us, store, start_us)
    key, fen_column = ("sl.sku, MIN(sl.name)", 4) if by == "sku" else ("sl.category", 3)
    sql = f"""
        SELECT {key}, SUM(sl.qty - COALESCE(b.qty, 0)), SUM(sl.paid_fen - COALESCE(b.fen, 0))
        FROM ({sales}) c JOIN sale_line sl ON sl.sale_id = c.id
        LEFT JOIN (SELECT r.sale_id, rl.line_no, SUM(rl.qty) AS qty, SUM(rl.fen) AS fen
                   FROM refund r JOIN refund_line rl ON rl.refund_id = r.id
                   GROUP BY r.sale_id, rl.line_no) b
               ON b.sale_id = sl.sale_id AND b.line_no = sl.line_no
        GROUP BY 1 ORDER BY {fen_column} DESC, 1 LIMIT {db.param}"""
    return db.execute_sql(sql, [*params, top]).fetchall()


def _moved_days(old: tuple[int, int], new: tuple[int, int]) -> list[int]:
    """The local days in one of the windows [since, end) ``old`` and ``new`` and not the
    other."""
    inside_old, inside_new = range(*old), range(*new)
    return sorted({*(day for day in inside_old if day not in inside_new),
                   *(day for day in inside_new if day not in inside_old)})


def window_delta(db: Database, old: tuple[int, int], new: tuple[int, int]
                 ) -> tuple[str, list[Any]]:
    """SQL (member, fen) moving each member's spend in the window of local days ``old``
    ([since, end)) to ``new``: the chain's ``agg_member_day`` rows of the days in one window and
    not the other (a day's members each), and its parameters. On PostgreSQL those days go as one
    array (``day = ANY``): one index-only scan of ``agg_member_day_by_store`` and an aggregate
    of one table, whose member count the planner estimates (two ranges OR'd read the table's
    pages through a bitmap, 0.3 s of a 14-day move at a million members)."""
    p = db.param
    inside = f"(CASE WHEN day >= {p} AND day < {p} THEN 1 ELSE 0 END)"
    (old_since, old_end), (since, end) = old, new
    signs = [since, end, old_since, old_end]
    if isinstance(db, PostgresqlDatabase):
        return (f"""SELECT member, SUM(fen * ({inside} - {inside})) AS fen FROM agg_member_day
            WHERE store = '' AND day = ANY({p}::integer[]) GROUP BY member""",
                [*signs, _moved_days(old, new)])
    sql = f"""SELECT member, SUM(fen * ({inside} - {inside})) AS fen FROM agg_member_day
        WHERE store = '' AND ((day >= {p} AND day < {p}) OR (day >= {p} AND day < {p}))
        GROUP BY member"""
    return sql, [*signs, min(old_since, since), max(old_since, since),
                 min(old_end, end), max(old_end, end)]


@dataclass(frozen=True)
class Kept:
    """A tier window whose spend per member the roll-ups keep: local days [since, end), in
    ``agg_member.window_fen`` (``month`` false: today's, moved daily), in
    ``agg_member_window`` (a month start's) or, with ``span``, in the run of
    ``agg_member_span`` holding ``end`` (any window end: HQ migration 28)."""

    since: int
    end: int
    month: bool
    span: bool = False

    def distance(self, since: int, end: int) -> int:
        return abs(self.since - since) + abs(self.end - end)


@dataclass(frozen=True)
class Source:
    """Where a kept window's spend and tier are read: the table (aliased ``a``), the condition
    naming the window and its parameters, the spend's column."""

    table: str
    where: str
    params: tuple[Any, ...]
    fen: str


def _source(db: Database, kept: Kept) -> Source:
    if kept.span:
        return Source("agg_member_span", f"a.from_end <= {db.param} AND a.to_end > {db.param}",
                      (kept.end, kept.end), "a.fen")
    if kept.month:
        return Source("agg_member_window", f"a.end_day = {db.param}", (kept.end,), "a.fen")
    return Source("agg_member", "a.store = ''", (), "a.window_fen")


def _tiers_in(db: Database, source: Source) -> list[str]:
    """The tiers the window's members have, found by skipping through its index (a probe a
    tier rather than a read of every member)."""
    first = (f"SELECT a.tier FROM {source.table} a WHERE {source.where} AND a.tier IS NOT NULL "
             "ORDER BY a.tier LIMIT 1")
    later = first.replace("a.tier IS NOT NULL", "a.tier > t.tier")
    sql = f"""WITH RECURSIVE t(tier) AS (SELECT ({first})
        UNION ALL SELECT ({later}) FROM t WHERE t.tier IS NOT NULL)
        SELECT tier FROM t WHERE tier IS NOT NULL"""
    return [tier for (tier,) in db.execute_sql(sql, [*source.params, *source.params])]


def _next_tiers(db: Database, tiers: list[tuple[str, int]], column: str
                ) -> tuple[str, str, list[Any]]:
    """SQL of the next tier's name and qualifying spend after the tier in ``column`` (a tier
    the rules lack counts as the lowest; none after the top), and their parameters."""
    p = db.param
    nexts = [*tiers[1:], None]
    name = " ".join(f"WHEN {p} THEN {p if after else 'NULL'}" for after in nexts)
    bound = name
    params: list[Any] = []
    for (tier, _), after in zip(tiers, nexts, strict=True):
        params += [tier, after[0]] if after else [tier]
    params.append(tiers[1][0])
    for (tier, _), after in zip(tiers, nexts, strict=True):
        params += [tier, int(after[1])] if after else [tier]
    params.append(int(tiers[1][1]))
    return (f"CASE {column} {name} ELSE {p} END", f"CASE {column} {bound} ELSE {p} END",
            params)


def near_tier(db: Database, since_us: int, end_us: int, store: str | None,
              tiers: list[tuple[str, int]], near: tuple[int, int],
              rolled: tuple[int, int, list[Kept]] | None = None, count: bool = False
              ) -> list[tuple[Any, ...]]:
    """(member, next tier, spend) of the members (at home in ``store``, or all) whose counted
    spend chain-wide after ``since_us`` is at least near[0]/near[1] of their next tier's and
    below it, by member; with ``count``, (next tier, members) instead. ``tiers``: the rules'
    (name, qualifying fen), lowest first; a tier the rules lack counts as the lowest.

    With ``rolled`` (the local days of ``since_us`` and ``end_us``, and the windows whose
    spend the roll-ups keep) the spend is the nearest kept window's, moved by the chain's
    ``agg_member_day`` rows of the days between it and this one (none when ``to`` is a kept
    window's end: today's or a month start's), less the counted sales at ``since_us`` itself
    (its day's first instant, which the window leaves out); without a kept window it is the
    sum of the window's rows; without ``rolled``, of the ledger's counted sales."""
    if len(tiers) < 2:
        return []
    if rolled is not None and rolled[2]:
        since, end, kept = rolled
        sql, params = _kept_near(db, since_us, (since, end),
                                 min(kept, key=lambda k: k.distance(since, end)), store, tiers,
                                 near)
    else:
        sql, params = _summed_near(db, since_us, end_us, store, tiers, near,
                                   rolled[:2] if rolled is not None else None)
    if count:
        return db.execute_sql(f"SELECT n.next_tier, COUNT(*) FROM ({sql}) n "
                              "GROUP BY n.next_tier", params).fetchall()
    return db.execute_sql(f"SELECT n.member, n.next_tier, n.fen FROM ({sql}) n "
                          "ORDER BY n.member", params).fetchall()


def _near(db: Database, rows: str, near: tuple[int, int]) -> tuple[str, list[Any]]:
    """SQL (member, next_tier, fen) of the ``rows`` (member, next_tier, bound, fen) near their
    bound, and the parameters that adds."""
    p = db.param
    return (f"""SELECT x.member, x.next_tier, x.fen FROM ({rows}) x
        WHERE x.bound IS NOT NULL AND x.fen < x.bound AND x.fen * {p} >= x.bound * {p}""",
            [near[1], near[0]])


def _summed_near(db: Database, since_us: int, end_us: int, store: str | None,
                 tiers: list[tuple[str, int]], near: tuple[int, int],
                 days: tuple[int, int] | None) -> tuple[str, list[Any]]:
    """:func:`near_tier`'s SQL when no window is kept: every member's spend summed from the
    window's days of ``agg_member_day`` (``days``) or from the ledger's counted sales."""
    p = db.param
    next_name, next_bound, params = _next_tiers(db, tiers, "m.tier")
    if days is None:
        sales, spend_params = counted_sales(db, end_us, None, since_us + 1)  # after since_us
        spend = f"SELECT c.member_id, SUM(c.net) AS fen FROM ({sales}) c GROUP BY c.member_id"
    else:
        # Only a member whose spend reaches the nearness of the lowest next tier can be near.
        least = min(int(bound) for _, bound in tiers[1:])
        at_since, sale_params = counted_sales(db, since_us + 1, None, since_us)
        spend = f"""SELECT x.member_id, SUM(x.fen) AS fen FROM (
                SELECT md.member AS member_id, md.fen FROM agg_member_day md
                WHERE md.store = '' AND md.day >= {p} AND md.day < {p}
                UNION ALL SELECT c.member_id, -c.net FROM ({at_since}) c) x
            GROUP BY x.member_id HAVING SUM(x.fen) * {p} >= {p}"""
        spend_params = [*days, *sale_params, near[1], least * near[0]]
    home = ""
    home_params: list[Any] = []
    if store is not None:
        home = f"WHERE m.id IN (SELECT member FROM member_home WHERE store = {p})"
        home_params = [store]
    rows = f"""SELECT m.id AS member, {next_name} AS next_tier, {next_bound} AS bound,
                      COALESCE(s.fen, 0) AS fen
               FROM member m LEFT JOIN ({spend}) s ON s.member_id = m.id {home}"""
    sql, near_params = _near(db, rows, near)
    return sql, [*params, *spend_params, *home_params, *near_params]


def _kept_near(db: Database, since_us: int, wanted: tuple[int, int], kept: Kept,
               store: str | None, tiers: list[tuple[str, int]], near: tuple[int, int]
               ) -> tuple[str, list[Any]]:
    """:func:`near_tier`'s SQL from the ``kept`` window: per tier the window's members have, a
    range of its (tier, spend) index below the next tier's spend ([bound * near, bound)); and
    the members whose spend differs from the kept one (``d``: a row on a day in one window and
    not the other, or a counted sale at ``since_us`` itself), with their spend moved by that.

    ``d`` is one table's aggregate (the counted sales at ``since_us``, almost always none, are
    read first and added only when there are some), so the planner knows it holds many members
    and joins it to the kept rows by hashing, not by probing an index once a member (a 14-day
    move at a million members: 190,822 members, 3.9 s of probes). A moved member's kept spend
    and tier are its row of the kept window; one without a row there (no spend in it) takes its
    tier from ``agg_member`` and is looked up only when its move alone reaches the lowest
    nearness."""
    p = db.param
    source = _source(db, kept)
    at_since, since_params = counted_sales(db, since_us + 1, None, since_us)
    firsts = db.execute_sql(f"SELECT c.member_id, c.net FROM ({at_since}) c",
                            since_params).fetchall()
    parts: list[str] = []
    params: list[Any] = []
    if (kept.since, kept.end) != wanted:
        delta, delta_params = window_delta(db, (kept.since, kept.end), wanted)
        parts.append(delta)
        params += delta_params
    if firsts:
        parts.append(" UNION ALL ".join(
            f"SELECT CAST({p} AS TEXT) AS member, CAST({p} AS BIGINT) AS fen" for _ in firsts))
        params += [value for member, net in firsts for value in (member, -int(net))]
    if not parts:
        delta = "SELECT '' AS member, 0 AS fen WHERE 1 = 0"
    elif len(parts) == 1 and not firsts:
        delta = parts[0]
    else:
        delta = f"""SELECT x.member, SUM(x.fen) AS fen FROM ({" UNION ALL ".join(parts)}) x
            GROUP BY x.member"""
    home, home_params = "", []
    if store is not None:
        home = f" AND {{0}} IN (SELECT member FROM member_home WHERE store = {p})"
        home_params = [store]
    names = [name for name, _ in tiers]
    bands, band_params = [], []
    # The tiers a run has are its member's chain row's (the catch-up copies both).
    for tier in _tiers_in(db, _source(db, Kept(0, 0, False)) if kept.span else source):
        index = names.index(tier) + 1 if tier in names else 1  # unknown: the lowest's next
        if index == len(tiers):
            continue  # the top tier: none after it
        after = tiers[index]
        bands.append(f"""SELECT a.member, CAST({p} AS TEXT) AS next_tier, {source.fen} AS fen
            FROM {source.table} a WHERE {source.where} AND a.tier = {p}
            AND {source.fen} >= {p} AND {source.fen} < {p}{home.format("a.member")}
            AND NOT EXISTS (SELECT 1 FROM d WHERE d.member = a.member)""")
        band_params += [after[0], *source.params, tier,
                        -(-int(after[1]) * near[0] // near[1]), int(after[1]), *home_params]
    moved_params: list[Any] = []
    if kept.month or kept.span:
        name, bound, tier_params = _next_tiers(db, tiers, "s.tier")
        table, where = source.table, source.where.replace("a.", "s.")
        kept_rows = f"""SELECT d.member, {name} AS next_tier, {bound} AS bound, s.fen + d.fen AS fen
            FROM d JOIN {table} s ON s.member = d.member AND {where}
            WHERE 1 = 1{home.format("d.member")}"""
        moved_params += [*tier_params, *source.params, *home_params]
        # Without a row in the kept window (no spend there): the move is its spend.
        least = min(int(bound) for _, bound in tiers[1:])
        name, bound, tier_params = _next_tiers(db, tiers, "t.tier")
        kept_rows += f""" UNION ALL
            SELECT d.member, {name} AS next_tier, {bound} AS bound, d.fen AS fen
            FROM d JOIN agg_member t ON t.store = '' AND t.member = d.member
            WHERE d.fen * {p} >= {p}{home.format("d.member")} AND NOT EXISTS (
                SELECT 1 FROM {table} s WHERE s.member = d.member AND {where})"""
        moved_params += [*tier_params, near[1], least * near[0], *home_params, *source.params]
    else:
        name, bound, tier_params = _next_tiers(db, tiers, "t.tier")
        kept_rows = f"""SELECT d.member, {name} AS next_tier, {bound} AS bound,
                   t.window_fen + d.fen AS fen
            FROM d JOIN agg_member t ON t.store = '' AND t.member = d.member
            WHERE 1 = 1{home.format("d.member")}"""
        moved_params += [*tier_params, *home_params]
    moved_rows, near_params = _near(db, kept_rows, near)
    sql = f"WITH d AS ({delta}) " + " UNION ALL ".join([*bands, moved_rows])
    return sql, [*params, *band_params, *moved_params, *near_params]


def dormant(db: Database, end_us: int, cut_us: int, store: str | None
            ) -> list[tuple[Any, ...]]:
    """(member, last counted sale µs) of the members with a counted sale before ``end_us`` and
    none from ``cut_us`` on, longest gone first."""
    sales, params = counted_sales(db, end_us, store)
    sql = f"""
        SELECT c.member_id, MAX(c.wall_us) FROM ({sales}) c GROUP BY c.member_id
        HAVING MAX(c.wall_us) < {db.param} ORDER BY 2, 1"""
    return db.execute_sql(sql, [*params, cut_us]).fetchall()


# -- from the roll-ups (terminal.hq.rollup: migration 15) ------------------------------------------
# The same figures read from agg_member_day and agg_member, whose days are the zone's local days
# numbered from 1970-01-01 (a period's bounds are local midnights, so whole days answer exactly).
# ``key`` is the store, or '' for the chain.


def rolled_segments(db: Database, start_day: int, end_day: int, store: str | None,
                    bounds: tuple[tuple[int, ...], ...],
                    months: list[tuple[int, int]] | None = None,
                    start_us: int | None = None) -> list[tuple[Any, ...]]:
    """(r, f, m, purchasers, repeat purchasers) per RFM segment of the period's purchasers.
    ``months``: the calendar months ([first day, day after the last)) the period overlaps: a
    month, or a month to date, is read from ``agg_member_month`` (:func:`member_figures`);
    ``start_us``: the local midnight starting ``start_day`` (any other period's purchasers are
    found by their first day in it)."""
    scores, params = rfm_scores(db, end_day, bounds)
    members, member_params = member_figures(db, start_day, end_day, store, months or [],
                                            start_us)
    sql = f"""
        SELECT {scores}, COUNT(*), SUM(CASE WHEN m.days >= 2 THEN 1 ELSE 0 END)
        FROM ({members}) m
        GROUP BY 1, 2, 3"""
    return db.execute_sql(sql, [*params, *member_params]).fetchall()


def _sales_between(db: Database, key: str, first: int, end: int) -> int:
    """Member sales (not less refunds) on the days [first, end) at store ``key`` ('' the
    chain), from ``agg_sale_day``: what a range of ``agg_member_day`` costs to read, roughly."""
    p = db.param
    at = f" AND store = {p}" if key else ""
    row = db.execute_sql(f"SELECT COALESCE(SUM(sales), 0) FROM agg_sale_day "
                         f"WHERE day >= {p} AND day < {p}{at}",
                         [first, end, *([key] if key else [])]).fetchone()
    return int(row[0])


def member_figures(db: Database, start_day: int, end_day: int, store: str | None,
                   months: list[tuple[int, int]], start_us: int | None = None
                   ) -> tuple[str, list[Any]]:
    """SQL (member, days, last_in, fen) of the period's purchasers at ``store`` (None: the
    chain): their days with a counted sale, the last of them, their spend; and its parameters.

    A period that is one calendar month of ``months``, or a month to a day after which that
    month has no member sale yet (``agg_sale_day``: the month to date, a dashboard's last
    month), reads the month's rows of ``agg_member_month``, one a purchaser. Any other period
    (with ``start_us``, the local midnight starting ``start_day``) reads each purchaser's first
    day in it: its row of ``agg_member_day`` whose previous day with a counted sale
    (``prev_us``) is before the period, one a purchaser, not grouped; only the members with a
    later day in the period (a row whose ``prev_us`` is in it) have those rows grouped, and
    added. At a million members a member buys about once a month, so most purchasers of a
    month-long period have one day in it: grouping every day by member was the period's cost
    (bench_analytics.py, 2026-10-15 to 2026-11-15: 0.59 s of its 1.43-1.58 s at load 7).
    Without ``start_us``, the days are grouped by member. Summing whole months and the days at a
    period's ends was measured slower (the 30 days to today: 0.69 s against 0.47 s in adjacent
    runs): the parts' union is grouped again by a sort (the planner cannot count its
    members)."""
    p = db.param
    key = store or ""
    inside = [(a, b) for a, b in months if a < end_day and b > start_day]
    if len(inside) == 1:
        a, b = inside[0]
        if a == start_day and (b == end_day or (b > end_day and not _sales_between(
                db, key, end_day, b))):
            return (f"""SELECT mm.member, mm.days, mm.last_day AS last_in, mm.fen
                FROM agg_member_month mm WHERE mm.store = {p} AND mm.month = {p}""",
                    [key, a])
    if start_us is None:
        return (f"""SELECT md.member, COUNT(*) AS days, MAX(md.day) AS last_in,
                   SUM(md.fen) AS fen
            FROM agg_member_day md WHERE md.store = {p} AND md.day >= {p} AND md.day < {p}
            GROUP BY md.member""", [key, start_day, end_day])
    days = f"md.store = {p} AND md.day >= {p} AND md.day < {p}"
    return (f"""SELECT md.member, 1 + COALESCE(a.days, 0) AS days,
               COALESCE(a.last_in, md.day) AS last_in, md.fen + COALESCE(a.fen, 0) AS fen
        FROM agg_member_day md
        LEFT JOIN (SELECT md.member, COUNT(*) AS days, MAX(md.day) AS last_in,
                          SUM(md.fen) AS fen
                   FROM agg_member_day md WHERE {days} AND md.prev_us >= {p}
                   GROUP BY md.member) a ON a.member = md.member
        WHERE {days} AND (md.prev_us IS NULL OR md.prev_us < {p})""",
            [key, start_day, end_day, start_us, key, start_day, end_day, start_us])


def rolled_first_between(db: Database, store: str | None, start_day: int | None,
                         end_day: int) -> int:
    """Members whose first counted sale (at ``store``) is before ``end_day`` (from
    ``start_day``): with both, the period's new purchasers; with no start, those with a sale
    (summed from ``agg_member_count``'s days, not counted member by member)."""
    return _members_by_day(db, "firsts", store, start_day, end_day)


def _members_by_day(db: Database, which: str, store: str | None, start_day: int | None,
                    end_day: int) -> int:
    """``agg_member_count``'s ``which`` (firsts or lasts) summed over the days before
    ``end_day`` (from ``start_day``) at ``store`` (None: the chain)."""
    p = db.param
    column = {"firsts": "firsts", "lasts": "lasts"}[which]
    sql = f"SELECT COALESCE(SUM({column}), 0) FROM agg_member_count WHERE store = {p} AND day < {p}"
    params: list[Any] = [store or "", end_day]
    if start_day is not None:
        sql += f" AND day >= {p}"
        params.append(start_day)
    return int(db.execute_sql(sql, params).fetchone()[0])


def rolled_dormancy(db: Database, store: str | None, cut_day: int, cut_us: int,
                    end_day: int, last_day: int | None = None) -> tuple[int, int]:
    """(members with a counted sale (at ``store``) before ``end_day``, those of them whose last
    one before it is before ``cut_day``, starting at ``cut_us``): the dormant are those whose
    last day is before the cut, and of those who bought again from ``end_day`` on, those whose
    first row from then on follows a day before the cut (its ``prev_us``). When the days from
    ``end_day`` to ``last_day`` (the roll-up's today) outnumber the dormancy's, the members
    with a sale in [cut, end) are counted instead (a row there whose previous day is before the
    cut is a member's first there), and the dormant are the others."""
    p = db.param
    key = store or ""
    with_sale = _members_by_day(db, "firsts", store, None, end_day)
    if last_day is not None and last_day - end_day > end_day - cut_day:
        active = int(db.execute_sql(
            f"SELECT COUNT(*) FROM agg_member_day WHERE store = {p} AND day >= {p} "
            f"AND day < {p} AND (prev_us IS NULL OR prev_us < {p})",
            (key, cut_day, end_day, cut_us)).fetchone()[0])
        return with_sale, with_sale - active
    gone = _members_by_day(db, "lasts", store, None, cut_day)
    back = int(db.execute_sql(
        f"SELECT COUNT(*) FROM agg_member_day WHERE store = {p} AND day >= {p} "
        f"AND prev_us < {p}", (key, end_day, cut_us)).fetchone()[0])
    return with_sale, gone + back


def rolled_dormant(db: Database, store: str | None, cut_us: int, end_day: int,
                   limit: int | None = None, after: tuple[int, str] | None = None
                   ) -> list[tuple[Any, ...]]:
    """(member, last counted sale µs before ``end_day``) of the members with a counted sale
    (at ``store``) before ``end_day`` and none from ``cut_us`` on, longest gone first; with
    ``limit``, that many after the (µs, member) ``after``: a page, read in the index's order."""
    p = db.param
    key = store or ""
    page, page_params = (f" LIMIT {p}", [limit]) if limit is not None else ("", [])
    since, since_params = "", []
    if after is not None:
        since = f" AND (ms.last_us, ms.member) > ({p}, {p})"
        since_params = [int(after[0]), str(after[1])]
    back = since.replace("ms.last_us", "md.prev_us").replace("ms.member", "md.member")
    sql = f"""SELECT x.member, x.at FROM (
        SELECT * FROM (SELECT ms.member, ms.last_us AS at FROM agg_member ms
                       WHERE ms.store = {p} AND ms.last_us < {p}{since}
                       ORDER BY ms.last_us, ms.member{page}) gone
        UNION ALL
        SELECT * FROM (SELECT md.member, md.prev_us AS at FROM agg_member_day md
                       WHERE md.store = {p} AND md.day >= {p} AND md.prev_us < {p}{back}
                       ORDER BY md.prev_us, md.member{page}) came_back
        ) x ORDER BY 2, 1{page}"""
    return db.execute_sql(sql, [key, cut_us, *since_params, *page_params, key, end_day, cut_us,
                                *since_params, *page_params, *page_params]).fetchall()


def rolled_top_sold(db: Database, start_day: int, end_day: int, store: str | None, by: str,
                    top: int) -> list[tuple[Any, ...]]:
    """:func:`top_sold` from ``agg_sku_day``."""
    p = db.param
    key, fen_column = ("sku, MIN(name)", 4) if by == "sku" else ("category", 3)
    params: list[Any] = [start_day, end_day]
    at_store = ""
    if store is not None:
        at_store = f" AND store = {p}"
        params.append(store)
    sql = f"""SELECT {key}, SUM(qty), SUM(fen) FROM agg_sku_day
        WHERE day >= {p} AND day < {p}{at_store}
        GROUP BY 1 ORDER BY {fen_column} DESC, 1 LIMIT {p}"""
    return db.execute_sql(sql, [*params, top]).fetchall()


def rolled_sales_by_day(db: Database, start_day: int, end_day: int, store: str | None
                        ) -> list[tuple[Any, ...]]:
    """(day, member sales, paid fen) of each day in [start_day, end_day) with a member sale (at
    ``store``), refunds not taken off, from ``agg_sale_day``."""
    p = db.param
    params: list[Any] = [start_day, end_day]
    at_store = ""
    if store is not None:
        at_store = f" AND store = {p}"
        params.append(store)
    return db.execute_sql(f"""SELECT day, SUM(sales), SUM(fen) FROM agg_sale_day
        WHERE day >= {p} AND day < {p}{at_store} GROUP BY day""", params).fetchall()
