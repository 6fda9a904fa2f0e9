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

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from peewee import Database

DAY_US = 86_400_000_000


def _offset_us(zone: ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset() or timedelta()
    return int(offset.total_seconds()) * 1_000_000


def day_expression(zone: ZoneInfo, first_us: int, end_us: int, column: str) -> str:
    """SQL giving ``column``'s (µs since the epoch, non-negative) local day number in ``zone``
    for times in [first_us, end_us]: the offsets the zone used there, found day by day."""
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
    if len(segments) == 1:
        return f"(({column} + {segments[0][1]}) / {DAY_US})"
    cases = " ".join(f"WHEN {column} < {until} THEN (({column} + {offset}) / {DAY_US})"
                     for (_, offset), (until, _) in pairwise(segments))
    return f"(CASE {cases} ELSE (({column} + {segments[-1][1]}) / {DAY_US}) END)"


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
    day = day_expression(zone, start_us, end_us, "c.wall_us")
    end_day = (end_us + _offset_us(zone, datetime.fromtimestamp(end_us / 1e6, UTC))) // DAY_US
    sales, params = counted_sales(db, end_us, store, start_us, "c0")
    p = db.param
    store_e = store_w = ""
    earlier_params: list[Any] = [start_us]
    whole_params: list[Any] = [start_us]
    if store is not None:
        store_e, store_w = " AND " + store_filter(db, "e.seq"), " AND " + store_filter(db, "w.seq")
        earlier_params.append(store)
        whole_params.append(store)
    recency_days, frequency_days, monetary_fen = bounds
    r = "5 - (" + " + ".join(f"CASE WHEN {b} < {end_day} - m.last_in THEN 1 ELSE 0 END"
                             for b in recency_days) + ")"
    f = "1 + " + " + ".join(f"CASE WHEN {b} <= m.days THEN 1 ELSE 0 END"
                            for b in frequency_days)
    m_ = "1 + " + " + ".join(f"CASE WHEN {b} <= m.fen THEN 1 ELSE 0 END" for b in monetary_fen)
    # New purchasers: every sale before the period wholly refunded (each member's earlier
    # sales counted through the (member, wall_us) index, less its wholly refunded ones).
    sql = f"""
        SELECT {r}, {f}, {m_}, COUNT(*), SUM(CASE WHEN m.days >= 2 THEN 1 ELSE 0 END),
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
    return db.execute_sql(sql, [*earlier_params, *params, *whole_params]).fetchall()


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
        GROUP BY 1 ORDER BY {fen_column} DESC, 1 LIMIT {int(top)}"""
    return db.execute_sql(sql, params).fetchall()


def near_tier(db: Database, since_us: int, end_us: int, store: str | None,
              tiers: list[tuple[str, int]], near: tuple[int, int],
              rolled: tuple[int, int, tuple[int, int] | None] | None = None
              ) -> list[tuple[Any, ...]]:
    """(member, next tier, spend) of the members (at home in ``store``, or all) whose counted
    spend chain-wide after ``since_us`` is at least near[0]/near[1] of their next tier's and
    below it, by member. ``tiers``: the rules' (name, qualifying fen), lowest first; a tier the
    rules lack counts as the lowest. With ``rolled`` (the local days of ``since_us`` and
    ``end_us``, and the window of local days [since, end) kept in ``agg_member.window_fen``,
    if any) the spend is the kept window's, moved by the chain's ``agg_member_day`` rows of the
    days between it and this one (none when ``to`` is the kept window's end: today's), less
    the counted sales at ``since_us`` itself (its day's first instant, which the window leaves
    out); without a kept window it is the sum of the window's rows."""
    if len(tiers) < 2:
        return []
    p = db.param
    nexts = [*tiers[1:], None]  # the tier after each one; none after the top
    next_name = " ".join(f"WHEN {p} THEN {p if after else 'NULL'}"
                         for after in nexts)
    next_bound = " ".join(f"WHEN {p} THEN {int(after[1]) if after else 'NULL'}"
                          for after in nexts)
    params: list[Any] = []
    for (name, _), after in zip(tiers, nexts, strict=True):
        params += [name, after[0]] if after else [name]
    params.append(tiers[1][0])
    params += [name for name, _ in tiers]
    if rolled is None:
        sales, sale_params = counted_sales(db, end_us, None, since_us + 1)  # after since_us
        spend = f"SELECT c.member_id, SUM(c.net) AS fen FROM ({sales}) c GROUP BY c.member_id"
        params += sale_params
    elif rolled[2] is None:
        # Only a member whose spend reaches the nearness of the lowest next tier can be near.
        least = min(int(bound) for _, bound in tiers[1:])
        at_since, sale_params = counted_sales(db, since_us + 1, None, since_us)
        spend = f"""SELECT x.member_id, SUM(x.fen) AS fen FROM (
                SELECT md.member AS member_id, md.fen FROM agg_member_day md
                WHERE md.store = '' AND md.day >= {p} AND md.day < {p}
                UNION ALL SELECT c.member_id, -c.net FROM ({at_since}) c) x
            GROUP BY x.member_id HAVING SUM(x.fen) * {int(near[1])} >= {least * int(near[0])}"""
        params += [rolled[0], rolled[1], *sale_params]
    else:
        spend, spend_params = _kept_spend(db, since_us, (rolled[0], rolled[1]), rolled[2],
                                          [int(bound) for _, bound in tiers[1:]], near)
        params += spend_params
    home = ""
    if store is not None:
        home = f"WHERE m.id IN (SELECT member FROM member_home WHERE store = {p})"
        params.append(store)
    members = f"member m LEFT JOIN ({spend}) s ON s.member_id = m.id {home}"
    if rolled is not None:
        # The candidates first, each member's tier read through its key: a few tens of
        # thousands of probes rather than every member in key order.
        home = home.replace("m.id IN", "s.member_id IN")
        members = f"""(SELECT s.member_id AS id, s.fen,
                              (SELECT t.tier FROM member t WHERE t.id = s.member_id) AS tier
                       FROM ({spend}) s {home}) m"""
    sql = f"""
        SELECT x.member_id, x.next_tier, x.fen FROM (
            SELECT m.id AS member_id,
                   CASE m.tier {next_name} ELSE {p} END AS next_tier,
                   CASE m.tier {next_bound} ELSE {int(tiers[1][1])} END AS bound,
                   COALESCE({"m" if rolled is not None else "s"}.fen, 0) AS fen
            FROM {members}) x
        WHERE x.bound IS NOT NULL AND x.fen < x.bound
              AND x.fen * {int(near[1])} >= x.bound * {int(near[0])}
        ORDER BY x.member_id"""
    return db.execute_sql(sql, params).fetchall()


def _kept_spend(db: Database, since_us: int, wanted: tuple[int, int], kept: tuple[int, int],
                bounds: list[int], near: tuple[int, int]) -> tuple[str, list[Any]]:
    """SQL (member_id, fen) of the members whose spend in the ``wanted`` window of local days
    may be near one of ``bounds`` (the next tiers' spend), from ``agg_member.window_fen`` (the
    ``kept`` window): the members whose kept spend lies in a band [bound * near, bound), and
    every member with a row on a day in one window and not the other, or a counted sale at
    ``since_us`` itself, with its spend moved by them."""
    (since, end), (kept_since, kept_end) = wanted, kept
    inside = "(CASE WHEN md.day >= {0} AND md.day < {1} THEN 1 ELSE 0 END)"
    change = (f"{inside.format(int(since), int(end))} - "
              f"{inside.format(int(kept_since), int(kept_end))}")
    at_since, params = counted_sales(db, since_us + 1, None, since_us)
    bands = " OR ".join(
        f"(a.window_fen >= {-(-bound * int(near[0]) // int(near[1]))} "
        f"AND a.window_fen < {bound})" for bound in sorted(set(bounds)))
    moved = ""
    if (since, end) != (kept_since, kept_end):
        moved = f"""SELECT md.member AS member_id, md.fen * ({change}) AS fen
                FROM agg_member_day md WHERE md.store = ''
                AND ((md.day >= {min(since, kept_since)} AND md.day < {max(since, kept_since)})
                     OR (md.day >= {min(end, kept_end)} AND md.day < {max(end, kept_end)}))
                UNION ALL """
    moved_bands = bands.replace("a.window_fen", "(COALESCE(a.window_fen, 0) + d.fen)")
    # A range of the (store, window_fen, member) index per band, read from the index alone.
    kept_in_bands = " UNION ALL ".join(
        f"""SELECT a.member AS member_id, a.window_fen AS fen FROM agg_member a
            WHERE a.store = '' AND {band}
                  AND NOT EXISTS (SELECT 1 FROM d WHERE d.member_id = a.member)"""
        for band in bands.split(" OR "))
    sql = f"""{kept_in_bands}
        UNION ALL
        SELECT d.member_id, COALESCE(a.window_fen, 0) + d.fen FROM d
            LEFT JOIN agg_member a ON a.store = '' AND a.member = d.member_id
            WHERE {moved_bands}"""
    delta = f"""SELECT x.member_id, SUM(x.fen) AS fen FROM ({moved}
                SELECT c.member_id, -c.net AS fen FROM ({at_since}) c) x GROUP BY x.member_id"""
    return f"SELECT * FROM (WITH d AS ({delta}) {sql}) k", params


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
                    bounds: tuple[tuple[int, ...], ...]) -> list[tuple[Any, ...]]:
    """(r, f, m, purchasers, repeat purchasers) per RFM segment of the period's purchasers."""
    p = db.param
    recency_days, frequency_days, monetary_fen = bounds
    r = "5 - (" + " + ".join(f"CASE WHEN {int(b)} < {int(end_day)} - m.last_in THEN 1 ELSE 0 END"
                             for b in recency_days) + ")"
    f = "1 + " + " + ".join(f"CASE WHEN {int(b)} <= m.days THEN 1 ELSE 0 END"
                            for b in frequency_days)
    m_ = "1 + " + " + ".join(f"CASE WHEN {int(b)} <= m.fen THEN 1 ELSE 0 END"
                             for b in monetary_fen)
    params: list[Any] = [store or "", start_day, end_day]
    # One row per member and day at the store ('' the chain's days): the period's rows.
    sql = f"""
        SELECT {r}, {f}, {m_}, COUNT(*), SUM(CASE WHEN m.days >= 2 THEN 1 ELSE 0 END)
        FROM (SELECT md.member, COUNT(*) AS days, MAX(md.day) AS last_in, SUM(md.fen) AS fen
              FROM agg_member_day md WHERE md.store = {p} AND md.day >= {p} AND md.day < {p}
              GROUP BY md.member) m
        GROUP BY 1, 2, 3"""
    return db.execute_sql(sql, params).fetchall()


def rolled_first_between(db: Database, store: str | None, start_day: int | None,
                         end_day: int) -> int:
    """Members whose first counted sale (at ``store``) is before ``end_day`` (from
    ``start_day``): with both, the period's new purchasers; with no start, those with a sale."""
    p = db.param
    sql = f"SELECT COUNT(*) FROM agg_member WHERE store = {p} AND first_day < {p}"
    params: list[Any] = [store or "", end_day]
    if start_day is not None:
        sql += f" AND first_day >= {p}"
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
    with_sale = int(db.execute_sql(
        f"SELECT COUNT(*) FROM agg_member WHERE store = {p} AND first_day < {p}",
        (key, end_day)).fetchone()[0])
    if last_day is not None and last_day - end_day > end_day - cut_day:
        active = int(db.execute_sql(
            f"SELECT COUNT(*) FROM agg_member_day WHERE store = {p} AND day >= {p} "
            f"AND day < {p} AND (prev_us IS NULL OR prev_us < {p})",
            (key, cut_day, end_day, cut_us)).fetchone()[0])
        return with_sale, with_sale - active
    gone = int(db.execute_sql(
        f"SELECT COUNT(*) FROM agg_member WHERE store = {p} AND last_day < {p}",
        (key, cut_day)).fetchone()[0])
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
    page = f" LIMIT {int(limit)}" if limit is not None else ""
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
    return db.execute_sql(sql, [key, cut_us, *since_params, key, end_day, cut_us,
                                *since_params]).fetchall()


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
        GROUP BY 1 ORDER BY {fen_column} DESC, 1 LIMIT {int(top)}"""
    return db.execute_sql(sql, params).fetchall()
