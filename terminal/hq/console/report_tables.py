"""Each report page's tables (shown, and downloaded as CSV) and charts (ECharts specs that
``static/charts.js`` draws), from the figures the page read. Headers in the reader's language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from terminal.hq.analytics import LABELS as KPI_LABELS
from terminal.hq.console.i18n import Translator
from terminal.hq.points_reports import BANDS, FLOWS

Context = dict[str, Any]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Any]]


class Rate(float):
    """A ratio (0.75) a page shows as a percentage (75.0%, as the dashboard's cards) and a CSV
    keeps as the number a spreadsheet computes with."""

    @property
    def percent(self) -> str:
        return f"{self * 100:.1f}%"


RATES = frozenset({"repeat_rate", "churn_rate"})


def _yuan(fen: int) -> Decimal:
    """Yuan to the fen, a number (a CSV cell a spreadsheet adds up, negative ones too)."""
    return Decimal(fen).scaleb(-2)


# -- the dashboard ---------------------------------------------------------------------------

KPIS = tuple(KPI_LABELS)


def dashboard_tables(context: Context, t: Translator) -> dict[str, Table]:
    data = context["data"]
    figures = data["figures"]
    return {
        "kpis": Table([t("report.figure"), t("report.value")],
                      [[t(f"kpi.{key}"), Rate(figures[key]) if key in RATES else figures[key]]
                       for key in KPIS]),
        "days": Table([t("report.day"), t("kpi.new_members"), t("report.sales"),
                       t("report.sales_yuan")],
                      [[day, new, count, _yuan(fen)] for day, new, count, fen in zip(
                          data["days"], data["new_members"], data["sales_count"],
                          data["sales_fen"], strict=True)]),
        "months": Table([t("report.month"), t("kpi.repeat_rate"), t("kpi.churn_rate")],
                        [[m["month"], Rate(m["repeat_rate"]), Rate(m["churn_rate"])]
                         for m in data["months"]]),
        "tiers": Table([t("member.tier"), t("report.members")],
                       [[t.tier(tier), count] for tier, count in figures["tiers"].items()]),
    }


def dashboard_charts(context: Context, t: Translator) -> dict[str, Any]:
    data = context["data"]
    months = [m["month"] for m in data["months"]]
    return {
        "new-members": {"kind": "bars", "x": data["days"], "series": [
            {"name": t("kpi.new_members"), "data": data["new_members"]}]},
        "sales": {"kind": "bars", "x": data["days"], "series": [
            {"name": t("report.sales"), "data": data["sales_count"]},
            {"name": t("report.sales_yuan"), "type": "line", "axis": 1,
             "data": [fen / 100 for fen in data["sales_fen"]]}]},
        "rates": {"kind": "bars", "percent": True, "x": months, "series": [
            {"name": t("kpi.repeat_rate"), "type": "line",
             "data": [m["repeat_rate"] for m in data["months"]]},
            {"name": t("kpi.churn_rate"), "type": "line",
             "data": [m["churn_rate"] for m in data["months"]]}]},
        "tiers": {"kind": "pie", "x": [t.tier(tier) for tier in data["figures"]["tiers"]],
                  "series": [{"name": t("member.tier"),
                              "data": list(data["figures"]["tiers"].values())}]},
    }


# -- points ------------------------------------------------------------------------------------

FLOW_COLUMNS = (*FLOWS, "liability_points", "liability_fen")


def points_tables(context: Context, t: Translator) -> dict[str, Table]:
    rows = []
    for period in context["data"]["periods"]:
        owners = [*period["stores"].items()]
        if "chain" in period:
            owners.append((t("report.chain"), period["chain"]))
        for owner, figures in owners:
            rows.append([period["from"], period["to"], owner,
                         *[figures[name] for name in FLOW_COLUMNS[:-1]],
                         _yuan(figures["liability_fen"])])
    return {"flow": Table([t("report.from"), t("report.to"), t("report.store"),
                           *[t(f"points.{name}") for name in FLOW_COLUMNS[:-1]],
                           t("points.liability_yuan")], rows)}


def points_charts(context: Context, t: Translator) -> dict[str, Any]:
    data = context["data"]
    store = context["scope"].store
    shown = [period["stores"].get(store) if store else period.get("chain")
             for period in data["periods"]]
    shown = [figures or dict.fromkeys(FLOW_COLUMNS, 0) for figures in shown]
    x = [period["from"] for period in data["periods"]]
    signs = {"issued": 1, "restored": 1, "adjusted": 1}
    return {"flow": {"kind": "bars", "x": x, "series": [
        *[{"name": t(f"points.{name}"), "stack": "flow",
           "data": [signs.get(name, -1) * figures[name] for figures in shown]}
          for name in FLOWS],
        {"name": t("points.liability_points"), "type": "line", "axis": 1,
         "data": [figures["liability_points"] for figures in shown]}]}}


def expiring_tables(context: Context, t: Translator) -> dict[str, Table]:
    data = context["data"]
    owners = [*data["stores"].items()]
    if "chain" in data:
        owners.append((t("report.chain"), data["chain"]))
    header = [t("report.store")]
    for days in BANDS:
        header += [t("expiring.points", n=days), t("expiring.yuan", n=days)]
    rows = []
    for owner, bands in owners:
        row: list[Any] = [owner]
        for days in BANDS:
            band = bands[f"within_{days}_days"]
            row += [band["points"], _yuan(band["fen"])]
        rows.append(row)
    return {"expiring": Table(header, rows)}


def expiring_charts(context: Context, t: Translator) -> dict[str, Any]:
    stores = context["data"]["stores"]
    return {"expiring": {"kind": "bars", "x": list(stores), "series": [
        {"name": t("expiring.within", n=days),
         "data": [bands[f"within_{days}_days"]["points"] for bands in stores.values()]}
        for days in BANDS]}}


def settlement_tables(context: Context, t: Translator) -> dict[str, Table]:
    data = context["data"]
    return {
        "matrix": Table([t("settlement.earned_at"), t("settlement.redeemed_at"),
                         t("report.points"), t("report.yuan")],
                        [[a, b, cell["points"], _yuan(cell["fen"])]
                         for a, row in data["matrix"].items() for b, cell in row.items()]),
        "net": Table([t("report.store"), t("settlement.net_points"), t("settlement.net_yuan")],
                     [[store, net["points"], _yuan(net["fen"])]
                      for store, net in data["net"].items()]),
    }


def settlement_charts(context: Context, t: Translator) -> dict[str, Any]:
    matrix = context["data"]["matrix"]
    stores = sorted(set(matrix) | {b for row in matrix.values() for b in row})
    earned = redeemed = stores
    return {"matrix": {"kind": "heatmap", "x": redeemed, "y": earned,
                       "xName": t("settlement.redeemed_at"), "yName": t("settlement.earned_at"),
                       "series": [{"name": t("report.points"), "data": [
                           [redeemed.index(b), earned.index(a), cell["points"]]
                           for a, row in matrix.items() for b, cell in row.items()]}]}}


# -- the terminals' X/Z reports -----------------------------------------------------------

DAY_COLUMNS = ("sales_count", "paid_fen", "deduction_fen", "points_redeemed", "points_issued",
               "refunds_count", "refunded_fen")


def _day_cells(figures: dict[str, Any]) -> list[Any]:
    return [_yuan(figures[name]) if name.endswith("_fen") else figures[name]
            for name in DAY_COLUMNS]


def days_tables(context: Context, t: Translator) -> dict[str, Table]:
    days = context["data"]["days"]
    figures = [t(f"days.{name}") for name in DAY_COLUMNS]
    return {
        "days": Table([t("report.day"), *figures],
                      [[day["day"], *_day_cells(day["totals"])] for day in days]),
        "terminals": Table(
            [t("report.day"), t("report.store"), t("days.terminal"), t("days.state"),
             t("days.reports"), *figures, t("days.hq_sales")],
            [[day["day"], row["store"], row["terminal"],
              t("days.closed") if row["closed"] else t("days.open"), row["reports"],
              *_day_cells(row), row["hq_sales"]]
             for day in days for row in day["terminals"]]),
    }


def days_charts(context: Context, t: Translator) -> dict[str, Any]:
    days = context["data"]["days"]
    return {"days": {"kind": "bars", "x": [day["day"] for day in days], "series": [
        {"name": t("days.paid_fen"), "data": [day["totals"]["paid_fen"] / 100 for day in days]},
        {"name": t("days.deduction_fen"),
         "data": [day["totals"]["deduction_fen"] / 100 for day in days]},
        {"name": t("days.points_redeemed"), "type": "line", "axis": 1,
         "data": [day["totals"]["points_redeemed"] for day in days]}]}}


# -- lists -------------------------------------------------------------------------------------

LIST_EXTRA: dict[str, tuple[str, ...]] = {
    "dormant": ("last_sale", "days_since"),
    "near_tier": ("next_tier", "spend_fen", "to_go_fen"),
    "birthdays": ("birthday",),
}
LIST_COLUMNS = ("name", "card_last4", "phone_last4", "tier", "balance", "home_store")


def list_tables(context: Context, t: Translator) -> dict[str, Table]:
    extra = LIST_EXTRA[context["which"]]
    columns = (*LIST_COLUMNS, *extra)

    def cell(row: dict[str, Any], column: str) -> Any:
        value = row.get(column)
        if column in ("tier", "next_tier") and value:
            return t.tier(value)
        return _yuan(value) if column.endswith("_fen") else value

    return {"members": Table([t(f"list.{column}") for column in columns],
                             [[cell(row, column) for column in columns]
                              for row in context["rows"]])}


def no_charts(context: Context, t: Translator) -> dict[str, Any]:
    return {}


TABLES: dict[str, Callable[[Context, Translator], dict[str, Table]]] = {
    "dashboard": dashboard_tables, "points": points_tables, "expiring": expiring_tables,
    "settlement": settlement_tables, "days": days_tables, "list": list_tables}
CHARTS: dict[str, Callable[[Context, Translator], dict[str, Any]]] = {
    "dashboard": dashboard_charts, "points": points_charts, "expiring": expiring_charts,
    "settlement": settlement_charts, "days": days_charts, "list": no_charts}
