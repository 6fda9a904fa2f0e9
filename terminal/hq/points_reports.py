"""`posterm-hq report points | expiring | settlement`: the chain's points, read from HQ's ledger.

    posterm-hq report points --db URL --from 2026-10-01 --to 2026-11-01 --by day|week|month
        [--store S001] [--rules rules.toml] [--json]
    posterm-hq report expiring --db URL [--at 2026-11-01] [--store S001] [--rules ...] [--json]
    posterm-hq report settlement --db URL --from 2026-10-01 --to 2026-11-01 [--rules ...] [--json]

Which store an entry belongs to: the store whose applied event wrote it (``applied_event``'s span
of the chain ledger's sequence holds the entry's ``seq``). Entries HQ wrote itself (the expiry
sweep, adjustments made at HQ) belong to ``HQ``. A lot belongs to the store of the entry that
created it (the lot's id is that entry's id).

- ``points``: per period (days in the programme's zone; weeks start on Monday, months on the 1st,
  the first and last clipped to [from, to)), per store and chain: points issued (earn and bonus
  entries), redeemed, expired, reversed, restored, adjusted, and the liability at the period's
  end: the sum of the entries before it (the chain's equals the sum of the members' balances at
  that instant; a store's is the net of its own entries, and the stores' with HQ's add up to it).
- ``expiring``: points of lots still remaining that expire after ``--at`` (local midnight) and
  within 30, 60 and 90 days of it (cumulative bands), by the store that issued them.
- ``settlement``: points that redemptions in [from, to) took from lots issued at store A, made at
  store B (restores after refunds put back), with each store's net position: the points of other
  stores' lots redeemed at it less its lots redeemed elsewhere (positive: the others owe it).

Values in yuan are integer fen at the rules' ``redeem.points_per_yuan``, rounded down to a whole
fen for each figure (``points * 100 // points_per_yuan``); a net position's fen are the sum of its
cells' fen, so the matrix and the positions agree.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from terminal.daemon.sim.demo import demo_rules
from terminal.hq import rollup
from terminal.hq.analytics import Period, day_number, parse_period
from terminal.hq.bundles import read_toml
from terminal.hq.database import open_hq_database
from terminal.hq.db import print_json, read_once
from terminal.loyalty import ledger
from terminal.loyalty.calendar import add_months
from terminal.loyalty.clock import to_micros
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.models import LedgerEntry, Lot

BY = ("day", "week", "month")
BANDS = (30, 60, 90)
# Each flow figure: the entry kinds it sums, and its sign (debits shown as positive numbers).
FLOWS = {"issued": ((ledger.EARN, ledger.BONUS), 1), "redeemed": ((ledger.REDEEM,), -1),
         "expired": ((ledger.EXPIRE,), -1), "reversed": ((ledger.REVERSE,), -1),
         "restored": ((ledger.RESTORE,), 1), "adjusted": ((ledger.ADJUST,), 1)}
LABELS = {"issued": "发放 issued", "redeemed": "兑换 redeemed", "expired": "过期 expired",
          "reversed": "冲回 reversed", "restored": "退回 restored", "adjusted": "调整 adjusted",
          "liability_points": "负债积分 liability", "liability_fen": "负债金额(分) fen"}


def fen_of(rules: Rules) -> Callable[[int], int]:
    return lambda points: points * 100 // rules.redeem.points_per_yuan


def periods(period: Period, by: str) -> list[tuple[date, date]]:
    """[from, to) cut at each day, Monday or 1st of a month."""
    cuts: list[tuple[date, date]] = []
    start = period.start
    while start < period.end:
        if by == "day":
            end = start + timedelta(days=1)
        elif by == "week":
            end = start + timedelta(days=7 - start.weekday())
        else:
            end = add_months(start.replace(day=1), 1)
        cuts.append((start, min(end, period.end)))
        start = end
    return cuts


def _midnight_us(day: date, rules: Rules) -> int:
    return to_micros(datetime.combine(day, time(), rules.zone))


def _period_case(column: str, bounds: list[int]) -> str:
    """SQL: -1 before bounds[0], then the index of the period [bounds[i], bounds[i + 1])."""
    cases = " ".join(f"WHEN {column} < {int(bound)} THEN {index - 1}"
                     for index, bound in enumerate(bounds))
    return f"(CASE {cases} ELSE {len(bounds) - 1} END)"


def _flow_rows(rules: Rules, cuts: list[tuple[date, date]], rolled: bool
               ) -> list[tuple[int, str, str, int]]:
    """(period index, -1 before the first; store; entry kind; points) up to the last period's
    end: from the roll-up, or (``rolled=False``) from the ledger's entries, set-based."""
    db = LedgerEntry._meta.database
    if rolled:
        bounds = [day_number(cuts[0][0]), *(day_number(end) for _, end in cuts)]
        sql = (f"SELECT {_period_case('day', bounds)}, store, kind, SUM(points) "
               f"FROM agg_points_day WHERE day < {db.param} GROUP BY 1, 2, 3")
    else:
        bounds = [_midnight_us(cuts[0][0], rules), *(_midnight_us(end, rules) for _, end in cuts)]
        sql = (f"SELECT {_period_case('e.wall_us', bounds)}, {rollup.store_of('e.seq')}, e.kind, "
               f"SUM(e.points) FROM ledger_entry e WHERE e.wall_us < {db.param} "
               "GROUP BY 1, 2, 3")
    return [(int(index), owner, kind, int(points))
            for index, owner, kind, points in db.execute_sql(sql, (bounds[-1],)).fetchall()]


def points_flow(rules: Rules, period: Period, by: str, store: str | None = None,
                rolled: bool = True) -> dict[str, Any]:
    """The points report (run with the models bound): from the roll-up (caught up by the
    caller), or with ``rolled=False`` from the ledger's entries."""
    cuts = periods(period, by)
    kind_of = {kind: (name, sign) for name, (kinds, sign) in FLOWS.items() for kind in kinds}
    flows: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(FLOWS, 0))
    before: dict[str, int] = defaultdict(int)  # net points up to the first period's start
    net: dict[tuple[int, str], int] = defaultdict(int)  # within each period
    for index, owner, kind, points in _flow_rows(rules, cuts, rolled):
        if index < 0:
            before[owner] += points
            continue
        net[index, owner] += points
        name, sign = kind_of.get(kind, ("adjusted", 1))
        flows[index, owner][name] += sign * points
    owners = sorted({owner for _, owner in net} | set(before))
    shown = owners if store is None else [store]
    fen = fen_of(rules)
    rows = []
    running = dict.fromkeys(owners, 0) | before
    for index, (first, end) in enumerate(cuts):
        row: dict[str, Any] = {"from": first.isoformat(), "to": end.isoformat(), "stores": {}}
        chain = dict.fromkeys(FLOWS, 0)
        for owner in owners:
            running[owner] += net.get((index, owner), 0)
            for name, value in flows.get((index, owner), {}).items():
                chain[name] += value
        for owner in shown:
            liability = running.get(owner, 0)
            row["stores"][owner] = {**flows.get((index, owner), dict.fromkeys(FLOWS, 0)),
                                    "liability_points": liability, "liability_fen": fen(liability)}
        chain_liability = sum(running.values())
        row["chain"] = {**chain, "liability_points": chain_liability,
                        "liability_fen": fen(chain_liability)}
        rows.append(row)
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "by": by,
            "store": store, "zone": rules.zone.key,
            "points_per_yuan": rules.redeem.points_per_yuan, "periods": rows}


def expiring(rules: Rules, at: date, store: str | None = None, rolled: bool = True
             ) -> dict[str, Any]:
    """Points expiring within 30, 60 and 90 days of ``at`` (run with the models bound): from
    ``agg_lot_day`` (caught up by the caller) and the few lots not yet dated on a trusted clock,
    or with ``rolled=False`` the lots grouped by issuing store and band in the database. A band
    ends at a local midnight, so a lot is in it when the last instant before its expiry is on
    one of the band's days."""
    db = Lot._meta.database
    start = datetime.combine(at, time(), rules.zone)
    bounds = [to_micros(start + timedelta(days=days)) for days in BANDS]
    band = " ".join(f"WHEN l.expires_us <= {int(bound)} THEN {index}"
                    for index, bound in enumerate(bounds[:-1]))
    p = db.param
    lots = (f"SELECT {rollup.store_of('e.seq')}, CASE {band} ELSE {len(BANDS) - 1} END, "
            f"SUM(l.remaining) FROM lot l JOIN ledger_entry e ON e.id = l.id "
            f"WHERE l.remaining > 0 AND l.expires_us > {p} AND l.expires_us <= {p}")
    if rolled:
        first = day_number(at)
        day_band = " ".join(f"WHEN day < {first + days} THEN {index}"
                            for index, days in enumerate(BANDS[:-1]))
        rows = db.execute_sql(
            f"SELECT store, CASE {day_band} ELSE {len(BANDS) - 1} END, SUM(points) "
            f"FROM agg_lot_day WHERE day >= {p} AND day < {p} GROUP BY 1, 2 "
            "HAVING SUM(points) <> 0 "
            f"UNION ALL {lots} AND NOT l.dated_trusted GROUP BY 1, 2",
            (first, first + BANDS[-1], to_micros(start), bounds[-1])).fetchall()
    else:
        rows = db.execute_sql(f"{lots} GROUP BY 1, 2", (to_micros(start), bounds[-1])).fetchall()
    by_store: dict[str, list[int]] = defaultdict(lambda: [0] * len(BANDS))
    for owner, index, remaining in rows:
        for within in range(int(index), len(BANDS)):  # the bands are cumulative
            by_store[owner][within] += int(remaining)
    chain = [sum(points[index] for points in by_store.values()) for index in range(len(BANDS))]
    fen = fen_of(rules)

    def bands(points: list[int]) -> dict[str, dict[str, int]]:
        return {f"within_{days}_days": {"points": value, "fen": fen(value)}
                for days, value in zip(BANDS, points, strict=True)}

    shown = sorted(by_store) if store is None else [store]
    return {"at": at.isoformat(), "store": store, "zone": rules.zone.key,
            "stores": {owner: bands(by_store.get(owner, [0] * len(BANDS))) for owner in shown},
            "chain": bands(chain)}


def settlement(rules: Rules, period: Period, rolled: bool = True) -> dict[str, Any]:
    """Points issued at one store and redeemed at another in the period (models bound): from
    the roll-up (caught up by the caller), or with ``rolled=False`` from the allocations."""
    db = LedgerEntry._meta.database
    p = db.param
    if rolled:
        query = (f"SELECT issued, redeemed, SUM(points) FROM agg_settle_day "
                 f"WHERE day >= {p} AND day < {p} GROUP BY 1, 2")
        params: tuple[Any, ...] = (period.start_day, period.end_day)
    else:
        query = (f"SELECT {rollup.store_of('i.seq')}, {rollup.store_of('e.seq')}, SUM(a.points) "
                 "FROM ledger_entry e JOIN allocation a ON a.entry_id = e.id "
                 "JOIN ledger_entry i ON i.id = a.lot_id "
                 f"WHERE e.kind IN ({p}, {p}) AND e.wall_us >= {p} AND e.wall_us < {p} "
                 "GROUP BY 1, 2")
        params = (*rollup.SETTLING, period.start_us, period.end_us)
    matrix: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for issued, redeemed, points in db.execute_sql(query, params).fetchall():
        matrix[issued][redeemed] -= int(points)
    fen = fen_of(rules)
    # Cells that cancel out (a redemption and its restore in the period) are left out, and
    # with them a store that has no other.
    owners = sorted({a for a, row in matrix.items() if any(row.values())}
                    | {b for row in matrix.values() for b, points in row.items() if points})
    cells = {a: {b: {"points": matrix[a][b], "fen": fen(matrix[a][b])}
                 for b in owners if matrix[a].get(b)}
             for a in owners if any(matrix[a].values())}
    net = {}
    for owner in owners:
        owed = [cells[a][owner] for a in cells if a != owner and owner in cells[a]]
        owes = [cell for b, cell in cells.get(owner, {}).items() if b != owner]
        net[owner] = {what: sum(c[what] for c in owed) - sum(c[what] for c in owes)
                      for what in ("points", "fen")}
    return {"from": period.start.isoformat(), "to": period.end.isoformat(),
            "zone": rules.zone.key, "points_per_yuan": rules.redeem.points_per_yuan,
            "matrix": cells, "net": net}


def configure(views: Any) -> None:
    """Add the three views to ``posterm-hq report``'s subparsers."""
    points = views.add_parser("points", help="积分流水 points issued, redeemed ... and liability")
    expiry = views.add_parser("expiring", help="即将过期 points expiring in 30/60/90 days")
    settle = views.add_parser("settlement", help="跨店结算 points earned at A, redeemed at B")
    for parser in (points, expiry, settle):
        parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
        parser.add_argument("--rules", type=Path, default=None,
                            help="the chain's rules TOML (default: the example rules)")
        parser.add_argument("--json", action="store_true")
    for parser in (points, settle):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True,
                            help="day after the last, YYYY-MM-DD")
    points.add_argument("--by", required=True, help="day | week | month")
    points.add_argument("--store", help="only this store's figures (the chain's still shown)")
    expiry.add_argument("--at", help="from this day's start, YYYY-MM-DD (default: today)")
    expiry.add_argument("--store", help="only this store's lots (the chain's still shown)")


def _compute(args: argparse.Namespace, rules: Rules) -> Callable[[], dict[str, Any]]:
    """Check the arguments (ValueError) and return what computes the view."""
    if getattr(args, "store", None) is not None and not args.store.isprintable():
        raise ValueError(f"--store {args.store!r}: a store code, printable")
    if args.view == "expiring":
        try:
            at = (date.fromisoformat(args.at) if args.at is not None
                  else datetime.now(rules.zone).date())
        except ValueError as exc:
            raise ValueError(f"--at: a date YYYY-MM-DD ({exc})") from None
        return lambda: expiring(rules, at, args.store)
    period = parse_period(args.start, args.end, rules.zone)
    if args.view == "settlement":
        return lambda: settlement(rules, period)
    if args.by not in BY:
        raise ValueError(f"--by {args.by!r}: one of day, week, month")
    return lambda: points_flow(rules, period, args.by, args.store)


def run(args: argparse.Namespace) -> int:
    where = f"posterm-hq report {args.view}"
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        compute = _compute(args, rules)
        db = open_hq_database(args.db, migrate=False)
    except (ValueError, OSError) as exc:  # RulesError and BuildError are ValueErrors
        print(f"{where}: {exc}", file=sys.stderr)
        return 2
    data = read_once(db, compute, rules.zone, rules.tier_window_months)
    if args.json:
        print_json(data)
    else:
        print("\n".join(TEXT[args.view](data)))
    return 0


def _points_text(data: dict[str, Any]) -> list[str]:
    lines = [f"积分流水 points {data['from']} .. {data['to']} ({data['zone']}), 按 by {data['by']}",
             f"{'期间 period':<24} {'门店 store':<10} " + " ".join(
                 f"{LABELS[name].split()[0]:>8}" for name in LABELS)]
    for row in data["periods"]:
        span = f"{row['from']} .. {row['to']}"
        for owner, figures in [*row["stores"].items(), ("全部 all", row["chain"])]:
            lines.append(f"{span:<24} {owner:<10} "
                         + " ".join(f"{figures[name]:>8}" for name in LABELS))
    return lines


def _expiring_text(data: dict[str, Any]) -> list[str]:
    lines = [f"即将过期 expiring from {data['at']} ({data['zone']}): 积分 points (分 fen)"]
    for owner, bands in [*data["stores"].items(), ("全部 all", data["chain"])]:
        lines.append(f"  {owner:<10} " + ", ".join(
            f"{days} 天内 days {bands[f'within_{days}_days']['points']} "
            f"({bands[f'within_{days}_days']['fen']})" for days in BANDS))
    return lines


def _settlement_text(data: dict[str, Any]) -> list[str]:
    lines = [f"跨店结算 settlement {data['from']} .. {data['to']} ({data['zone']}): "
             "积分发放店 earned at -> 兑换店 redeemed at, 积分 points (分 fen)"]
    for issued, row in data["matrix"].items():
        for redeemed, cell in row.items():
            lines.append(f"  {issued} -> {redeemed}: {cell['points']} ({cell['fen']})")
    lines.append("净额 net (正数: 他店应付 positive: owed by the others)")
    for owner, position in data["net"].items():
        lines.append(f"  {owner}: {position['points']} ({position['fen']})")
    return lines


TEXT: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "points": _points_text, "expiring": _expiring_text, "settlement": _settlement_text}
