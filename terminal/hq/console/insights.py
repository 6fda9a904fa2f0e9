"""What the console's report pages read: the dashboard, the points reports and the lists to act
on, over :mod:`terminal.hq.analytics` and :mod:`terminal.hq.points_reports` (the same figures
as ``posterm-hq report``), scoped to what the signed-in person may see.

A store manager reads its stores only: the dashboard and the points of one of them, the
settlement cells and net positions that involve them, and the members at home there. The lists
name members, so reading or exporting one is audited like a member search.

Run every function here on the console's database thread (:class:`ConsoleDb`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from peewee import JOIN, SQL, Value, fn

from terminal.hq import analytics, analytics_sql, day_reports, points_reports
from terminal.hq.analytics import Period
from terminal.hq.console import audit
from terminal.hq.console.roles import Principal
from terminal.hq.models import AppliedEvent, MemberHome
from terminal.loyalty.calendar import add_months
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import Member, Sale

BUCKET_US = 15 * 60 * 1_000_000  # every zone's offset is whole quarter hours
MONTHS = 6  # repeat and churn by month: this many months ending with the period's last
LIST_LIMIT = 500  # rows a list page shows (its CSV streams every page)
CSV_PAGE = 5_000  # rows a list's CSV reads at a time


@dataclass(frozen=True)
class ListPage:
    """A page of a list to act on: its rows, how many the whole list holds, and the cursor of
    the next page (None on the last)."""

    rows: list[dict[str, Any]]
    total: int
    after: str | None


@dataclass(frozen=True)
class Scope:
    """One report's question: a store (None: the chain) and a period [start, end)."""

    store: str | None
    period: Period


def day_cuts(period: Period) -> list[date]:
    days = []
    day = period.start
    while day < period.end:
        days.append(day)
        day += timedelta(days=1)
    return days


def _midnight_us(day: date, period: Period) -> int:
    return to_micros(datetime.combine(day, time(), period.zone))


def store_of_seq(seq: Any) -> Any:
    """SQL: the store whose applied event wrote the row at ``seq`` (spans never overlap, so the
    first span ending at or after it holds it: one probe of the ``last_seq`` index)."""
    span = AppliedEvent.alias()
    return (span.select(span.store).where(span.last_seq >= seq)
            .order_by(span.last_seq).limit(1))


def _per_day(period: Period, rows: list[tuple[int, int, int]]) -> list[list[int]]:
    """[count, fen] per day of the period from (quarter-hour bucket, count, fen) rows."""
    starts = [_midnight_us(day, period) - period.start_us for day in day_cuts(period)]
    out = [[0, 0] for _ in starts]
    for bucket, count, fen in rows:
        index = bisect.bisect_right(starts, int(bucket) * BUCKET_US) - 1
        out[index][0] += int(count)
        out[index][1] += int(fen)
    return out


def daily_sales(scope: Scope, rolled: bool = True) -> list[list[int]]:
    """Member sales rung up per day (count, paid fen), refunds not taken off: from the roll-up
    (``agg_sale_day``, caught up by the caller), or with ``rolled=False`` from the sales."""
    period = scope.period
    if rolled:
        out = [[0, 0] for _ in day_cuts(period)]
        for day, count, fen in analytics_sql.rolled_sales_by_day(
                Sale._meta.database, period.start_day, period.end_day, scope.store):
            out[int(day) - period.start_day] = [int(count), int(fen)]
        return out
    bucket = (Sale.wall_us - period.start_us) / BUCKET_US
    query = (Sale.select(bucket, fn.COUNT(Sale.id), fn.SUM(Sale.paid_fen))
             .where(Sale.member.is_null(False) & (Sale.wall_us >= period.start_us)
                    & (Sale.wall_us < period.end_us)))
    if scope.store is not None:
        query = query.where(store_of_seq(Sale.seq) == scope.store)
    # GROUP BY 1: the bucket expression binds its numbers again in GROUP BY, as other
    # parameters that PostgreSQL will not match to the SELECT's.
    return _per_day(period, list(query.group_by(SQL("1")).tuples()))


def daily_new_members(scope: Scope) -> list[int]:
    period = scope.period
    bucket = (Member.registered_us - period.start_us) / BUCKET_US
    query = (Member.select(bucket, fn.COUNT(Member.id), Value(0))
             .where((Member.registered_us >= period.start_us)
                    & (Member.registered_us < period.end_us)))
    if scope.store is not None:
        query = (query.join(MemberHome, on=(MemberHome.member == Member.id))
                 .where(MemberHome.store == scope.store))
    return [count for count, _ in _per_day(period, list(query.group_by(SQL("1")).tuples()))]


def month_periods(period: Period, months: int = MONTHS) -> list[Period]:
    """The ``months`` calendar months ending with the one holding the period's last day, the
    last cut at the period's end."""
    last = period.end - timedelta(days=1)
    first = add_months(last.replace(day=1), 1 - months)
    out = []
    for n in range(months):
        start = add_months(first, n)
        out.append(Period(start, min(add_months(start, 1), period.end), period.zone))
    return out


@dataclass(frozen=True)
class Insights:
    rules: Rules

    # -- the dashboard ------------------------------------------------------------------------

    def dashboard(self, who: Principal, scope: Scope) -> dict[str, Any]:
        figures = analytics.analytics(self.rules, scope.period, scope.store)
        sales = daily_sales(scope)
        months = []
        for month in month_periods(scope.period):
            months.append({"month": month.start.strftime("%Y-%m"),
                           **analytics.rates(month, scope.store)})
        return {"figures": figures,
                "days": [day.isoformat() for day in day_cuts(scope.period)],
                "new_members": daily_new_members(scope),
                "sales_count": [count for count, _ in sales],
                "sales_fen": [fen for _, fen in sales],
                "sales_total": {"count": sum(c for c, _ in sales), "fen": sum(f for _, f in sales)},
                "months": months}

    # -- points --------------------------------------------------------------------------------

    def points(self, who: Principal, scope: Scope, by: str) -> dict[str, Any]:
        data = points_reports.points_flow(self.rules, scope.period, by, scope.store)
        if not who.chain_wide:  # a store manager reads its store's figures, not the chain's
            for row in data["periods"]:
                row.pop("chain")
        return data

    def expiring(self, who: Principal, at: date, store: str | None) -> dict[str, Any]:
        data = points_reports.expiring(self.rules, at, store)
        if not who.chain_wide:
            data.pop("chain")
        return data

    def settlement(self, who: Principal, period: Period) -> dict[str, Any]:
        data = points_reports.settlement(self.rules, period)
        if not who.chain_wide:
            mine = set(who.stores)
            data["matrix"] = {a: cells for a, row in data["matrix"].items()
                              if (cells := {b: cell for b, cell in row.items()
                                            if a in mine or b in mine})}
            data["net"] = {store: net for store, net in data["net"].items() if store in mine}
        return data

    def days(self, who: Principal, scope: Scope) -> dict[str, Any]:
        """The terminals' X/Z reports collected at HQ, per day (of its store for a manager)."""
        return day_reports.day_reports(scope.period, scope.store)

    # -- lists to act on -----------------------------------------------------------------------

    def members_list(self, who: Principal, which: str, scope: Scope,
                     dormant_days: int = 90, after: str | None = None, limit: int | None = None,
                     audited: str | None = "page") -> ListPage:
        """A page of one list (``dormant``, ``near_tier``, ``birthdays``) in the scope's store
        (None: every store the person sees), from ``after`` (a page's ``after``; None: the
        first), audited (``audited``: how it was read; None for a CSV's later pages, its
        first being audited as the export)."""
        page = LISTS[which](self, scope, dormant_days, after,
                            LIST_LIMIT if limit is None else limit)
        if audited is not None:
            audit.record(who, "member.list", which,
                         detail=f"{scope.store or 'chain'} {scope.period.start}.."
                         f"{scope.period.end} {audited}: {len(page.rows)} of {page.total} "
                         "members")
        return page

    def _profiles(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            query = (Member.select(Member.id, Member.name, Member.card_last4, Member.phone_last4,
                                   Member.tier, Member.balance, Member.birthday,
                                   MemberHome.store.alias("home_store"))
                     .join(MemberHome, JOIN.LEFT_OUTER, on=(MemberHome.member == Member.id))
                     .where(Member.id.in_(ids[start:start + 500])).dicts())
            found.update({row["id"]: row for row in query})
        return found

    def _dormant(self, scope: Scope, dormant_days: int, after: str | None, limit: int
                 ) -> ListPage:
        """Read from the roll-ups a page at a time, in the order of their index (longest gone
        first, then by member): ``after`` is the last row's ``µs:member``."""
        period = scope.period
        cursor = None
        if after:
            at, _, member = after.partition(":")
            if not at.isdigit() or not member:
                raise ValueError(f"after {after!r}: a page's cursor")
            cursor = (int(at), member)
        gone = analytics.dormant_members(period, scope.store, dormant_days, limit=limit + 1,
                                         after=cursor)  # one more: is there a next page?
        more, gone = len(gone) > limit, gone[:limit]
        total = analytics.dormant_count(period, scope.store, dormant_days)
        profiles = self._profiles([member for member, _ in gone])
        rows = [{**profiles[member], "last_sale": period.day(at).isoformat(),
                 "days_since": (period.end - period.day(at)).days}
                for member, at in gone if member in profiles]
        last = f"{gone[-1][1]}:{gone[-1][0]}" if more else None
        return ListPage(rows, total, last)

    @staticmethod
    def _offset(after: str | None) -> int:
        if after and not after.isdigit():
            raise ValueError(f"after {after!r}: a page's cursor")
        return int(after or 0)

    def _near_tier(self, scope: Scope, _: int, after: str | None, limit: int) -> ListPage:
        """The whole list is the members in a band below a tier (read from the kept window):
        ordered by what each has to go, a page of it shown."""
        near = analytics.near_tier(self.rules, scope.period, scope.store)
        bounds = {level.name: level.qualify_spend_fen for level in self.rules.tiers}
        ordered = sorted(near, key=lambda row: (bounds[row[1]] - row[2], row[0]))
        start = self._offset(after)
        page = ordered[start:start + limit]
        profiles = self._profiles([member for member, _, _ in page])
        rows = [{**profiles[member], "next_tier": following, "spend_fen": spend,
                 "to_go_fen": bounds[following] - spend}
                for member, following, spend in page if member in profiles]
        return ListPage(rows, len(ordered),
                        str(start + limit) if start + limit < len(ordered) else None)

    def _birthdays(self, scope: Scope, _: int, after: str | None, limit: int) -> ListPage:
        month = f"{scope.period.start.month:02d}"
        query = (Member.select(Member.id).where(fn.SUBSTR(Member.birthday, 6, 2) == month))
        if scope.store is not None:
            query = (query.join(MemberHome, on=(MemberHome.member == Member.id))
                     .where(MemberHome.store == scope.store))
        total = query.count()
        start = self._offset(after)
        ids = [member_id for (member_id,) in query.order_by(
            fn.SUBSTR(Member.birthday, 6), Member.id).offset(start).limit(limit).tuples()]
        profiles = self._profiles(ids)
        return ListPage([profiles[member] for member in ids if member in profiles], total,
                        str(start + limit) if start + limit < total else None)


LISTS = {"dormant": Insights._dormant, "near_tier": Insights._near_tier,
         "birthdays": Insights._birthdays}
