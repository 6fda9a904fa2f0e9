"""The report pages: the dashboard, points flow, points expiring, the settlement matrix and the
lists to act on, each with charts (ECharts) and a CSV download of each of its tables
(``/reports/{view}.csv?table=...`` with the page's own query)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from peewee import fn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from terminal.hq.analytics import parse_period
from terminal.hq.console import report_tables
from terminal.hq.console.csv_out import MEDIA_TYPE, csv_text, to_csv
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.i18n import Translator
from terminal.hq.console.insights import CSV_PAGE, LISTS, Insights, Scope
from terminal.hq.console.roles import Principal
from terminal.hq.console.web import NotFound, console_of, page, render, translator
from terminal.hq.models import MemberHome
from terminal.hq.points_reports import BY
from terminal.hq.shown_text import shown
from terminal.protocol.topics import TopicError, check_id

DEFAULT_DAYS = 30


class BadQuery(ValueError):
    """A report's query the console refuses: the page says why in its language
    (``report.error.{key}``, each value a person typed shown as typed, cut), nothing is read."""

    def __init__(self, key: str, **values: str | int) -> None:
        super().__init__(key)
        self.key, self.values = key, values

    def text(self, t: Translator) -> str:
        values = {name: shown(value, 40) if isinstance(value, str) else value
                  for name, value in self.values.items()}
        if "field" in values:  # the input's label as the page shows it
            values["field"] = t(str(self.values["field"]))
        return t(f"report.error.{self.key}", **values)

    def __str__(self) -> str:
        return self.text(Translator("en"))


FROM, TO, AT = "report.from", "report.to_exclusive", "expiring.at"  # the inputs' labels


def insights(request: Request) -> Insights:
    return Insights(console_of(request).reader.rules)


def caught_up(request: Request) -> ConsoleDb:
    """The console's database, for a read of the roll-ups: they catch up first."""
    rules = console_of(request).reader.rules
    return console_of(request).db.caught_up(rules.zone, rules.tier_window_months)


def _today(request: Request) -> date:
    return datetime.now(console_of(request).reader.rules.zone).date()


def store_param(request: Request, who: Principal) -> str | None:
    """The ``store`` asked for: None for the chain; a store manager always reads one of its
    stores (its first unless it names another), and another store is not found."""
    store = request.query_params.get("store", "").strip() or None
    if store is not None:
        try:
            check_id(store, "store")
        except TopicError:
            raise NotFound() from None
    if not who.chain_wide and store is None:
        store = who.stores[0] if who.stores else None
    if not who.sees_store(store):
        raise NotFound()
    return store


def scope_param(request: Request, who: Principal, days: int = DEFAULT_DAYS) -> Scope:
    params = request.query_params
    end = params.get("to") or (_today(request) + timedelta(days=1)).isoformat()
    if not _is_date(end):
        raise BadQuery("date", field=TO, value=end)
    start = params.get("from") or (date.fromisoformat(end) - timedelta(days=days)).isoformat()
    if not _is_date(start):
        raise BadQuery("date", field=FROM, value=start)
    if date.fromisoformat(start) >= date.fromisoformat(end):
        raise BadQuery("order", start=start, end=end)
    period = parse_period(start, end, console_of(request).reader.rules.zone)
    if (period.end - period.start).days > 366:
        raise BadQuery("too_long", days=(period.end - period.start).days)
    return Scope(store_param(request, who), period)


def _day_param(request: Request, name: str) -> date:
    """A day parameter (default: today in the programme's zone)."""
    text = request.query_params.get(name) or _today(request).isoformat()
    if not _is_date(text):
        raise BadQuery("date", field=AT, value=text)
    return date.fromisoformat(text)


def _is_date(text: str) -> bool:
    """YYYY-MM-DD, as every browser's date field sends it (``date.fromisoformat`` alone would
    also take 20261206 and 2026-W49-1)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def stores_seen(who: Principal) -> list[str]:
    """The stores a person may pick (run on the database thread)."""
    if not who.chain_wide:
        return list(who.stores)
    return [store for (store,) in MemberHome.select(fn.DISTINCT(MemberHome.store))
            .order_by(MemberHome.store).tuples()]


@dataclass(frozen=True)
class View:
    permission: str
    template: str
    read: Callable[[Request, Principal], Awaitable[dict[str, Any]]]


async def _dashboard(request: Request, who: Principal) -> dict[str, Any]:
    scope = scope_param(request, who)
    data = await caught_up(request).run(insights(request).dashboard, who, scope)
    return {"scope": scope, "data": data}


async def _points(request: Request, who: Principal) -> dict[str, Any]:
    by = request.query_params.get("by") or "day"
    if by not in BY:
        raise BadQuery("by", value=by)
    scope = scope_param(request, who)
    data = await caught_up(request).run(insights(request).points, who, scope, by)
    return {"scope": scope, "data": data, "by": by}


async def _expiring(request: Request, who: Principal) -> dict[str, Any]:
    at = _day_param(request, "at")
    store = store_param(request, who)
    data = await caught_up(request).run(insights(request).expiring, who, at, store)
    return {"data": data, "at": at.isoformat(), "store": store}


async def _settlement(request: Request, who: Principal) -> dict[str, Any]:
    scope = scope_param(request, who)
    data = await caught_up(request).run(insights(request).settlement, who, scope.period)
    return {"scope": scope, "data": data}


async def _days(request: Request, who: Principal) -> dict[str, Any]:
    scope = scope_param(request, who)
    data = await console_of(request).db.run(insights(request).days, who, scope)
    return {"scope": scope, "data": data}


def _list_query(request: Request, who: Principal) -> tuple[str, Scope, int]:
    """The list, its scope (the day ``at``) and the dormancy days a list's query asks for."""
    which = request.path_params["which"]
    if which not in LISTS:
        raise NotFound()
    text = request.query_params.get("dormant_days") or "90"
    try:
        dormant_days = int(text)
    except ValueError:
        raise BadQuery("dormant_days", value=text) from None
    if not 1 <= dormant_days <= 3650:
        raise BadQuery("dormant_days", value=text)
    day = _day_param(request, "at")
    scope = Scope(store_param(request, who),
                  parse_period(day.isoformat(), (day + timedelta(days=1)).isoformat(),
                               console_of(request).reader.rules.zone))
    return which, scope, dormant_days


async def _list(request: Request, who: Principal) -> dict[str, Any]:
    """A page of a list: 500 rows from ``after`` (the previous page's last), the next page's
    link, and how many the whole list holds."""
    which, scope, dormant_days = _list_query(request, who)
    after = request.query_params.get("after") or None
    try:
        found = await caught_up(request).run(insights(request).members_list, who, which, scope,
                                             dormant_days, after)
    except ValueError:  # a page's cursor not one this list gave
        raise BadQuery("after", value=after or "") from None
    day = scope.period.start
    following = (urlencode({**request.query_params, "after": found.after})
                 if found.after is not None else None)
    return {"which": which, "rows": found.rows, "total": found.total, "next_query": following,
            "scope": scope, "dormant_days": dormant_days, "month": day.month,
            "at": day.isoformat()}


async def _list_csv(request: Request) -> Response:
    """A whole list as CSV, streamed a page of 5,000 at a time (half a million dormant members
    are not read, rendered or held at once); audited once, as an export."""
    who: Principal = request.scope["principal"]
    who.require("lists.read")
    try:
        which, scope, dormant_days = _list_query(request, who)
    except BadQuery as exc:
        return Response(exc.text(translator(request)), 400,
                        media_type="text/plain; charset=utf-8")
    t = translator(request)
    read = insights(request).members_list
    first = await caught_up(request).run(read, who, which, scope, dormant_days, None, CSV_PAGE,
                                         "csv")

    def lines(rows: list[dict[str, Any]], header: bool) -> str:
        table = report_tables.TABLES["list"]({"which": which, "rows": rows}, t)["members"]
        return csv_text(table.rows, table.header if header else None)

    async def stream() -> AsyncIterator[bytes]:
        page = first
        yield lines(page.rows, True).encode("utf-8")
        while page.after is not None:
            page = await console_of(request).db.run(read, who, which, scope, dormant_days,
                                                    page.after, CSV_PAGE, None)
            yield lines(page.rows, False).encode("utf-8")

    return StreamingResponse(stream(), media_type=MEDIA_TYPE, headers={
        "content-disposition": f'attachment; filename="{which}-members.csv"'})


VIEWS: dict[str, View] = {
    "dashboard": View("reports.read", "reports/dashboard.html", _dashboard),
    "points": View("reports.read", "reports/points.html", _points),
    "expiring": View("reports.read", "reports/expiring.html", _expiring),
    "settlement": View("reports.read", "reports/settlement.html", _settlement),
    "days": View("reports.read", "reports/days.html", _days),
    "list": View("lists.read", "reports/list.html", _list),
}


async def _context(request: Request, name: str) -> tuple[dict[str, Any], int]:
    view = VIEWS[name]
    who: Principal = request.scope["principal"]
    who.require(view.permission)
    stores = await console_of(request).db.run(stores_seen, who)
    try:
        context = await view.read(request, who)
    except BadQuery as exc:
        return {"error": exc.text(translator(request)), "stores": stores, "view": name}, 400
    return {**context, "stores": stores, "view": name}, 200


def _handler(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def html(request: Request) -> Response:
        context, status = await _context(request, name)
        t = translator(request)
        if status == 200:
            context["tables"] = report_tables.TABLES[name](context, t)
            context["charts"] = report_tables.CHARTS[name](context, t)
        csv_base = (f"/reports/lists/{context['which']}.csv" if "which" in context
                    else f"/reports/{name}.csv")
        return render(request, VIEWS[name].template, status, nav="reports",
                      query=request.url.query, csv_base=csv_base, **context)

    async def csv(request: Request) -> Response:
        context, status = await _context(request, name)
        if status != 200:
            return Response(context["error"], status, media_type="text/plain; charset=utf-8")
        tables = report_tables.TABLES[name](context, translator(request))
        wanted = request.query_params.get("table") or next(iter(tables))
        if wanted not in tables:
            raise NotFound()
        table = tables[wanted]
        suffix = context.get("which", name)
        return Response(to_csv(table.header, table.rows), media_type=MEDIA_TYPE, headers={
            "content-disposition": f'attachment; filename="{suffix}-{wanted}.csv"'})

    html.__name__, csv.__name__ = f"{name}_page", f"{name}_csv"
    return page()(html), page()(csv)  # type: ignore[return-value]


_PAGES = {name: _handler(name) for name in VIEWS}

ROUTES = [
    Route("/reports", _PAGES["dashboard"][0]),
    Route("/reports/dashboard.csv", _PAGES["dashboard"][1]),
    *[route for name in ("points", "expiring", "settlement", "days")
      for route in (Route(f"/reports/{name}", _PAGES[name][0]),
                    Route(f"/reports/{name}.csv", _PAGES[name][1]))],
    Route("/reports/lists/{which}.csv", page()(_list_csv)),
    Route("/reports/lists/{which}", _PAGES["list"][0]),
]
