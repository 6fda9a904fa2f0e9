"""End-of-day reports: X (a reading, any number of times) and Z (closes the day, once).

The body is the store's daily report as it stood when printed; the row is append-only like the
ledger, so a printed report can always be shown again exactly as it was. Each report also goes to
HQ as a ``day_report`` event written in the same transaction (its figures, the till's own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import DuplicateId, InvalidInput
from terminal.loyalty.ids import new_id
from terminal.loyalty.store.ledger_store import LedgerStore
from terminal.loyalty.store.models import DailyReport

KINDS = ("X", "Z")
DAY_FIGURES = ("sales", "refunds", "points", "liability_points", "liability_fen")


@dataclass(frozen=True)
class StoredReport:
    id: str
    kind: str
    day: date
    body: dict[str, Any]


def write_report(store: LedgerStore, kind: str, day: date, moment: Moment,
                 operator: str) -> StoredReport:
    """Compute the day's report and store it; a second Z for the same day is refused."""
    if kind not in KINDS:
        raise InvalidInput(f"report kind {kind!r} is not X or Z", "report.kind")
    # The store's own writer: the report takes the next terminal sequence number and is
    # audited in the same transaction, like every other write.
    with store._writing(moment) as w:
        if kind == "Z" and DailyReport.get_or_none(
            (DailyReport.kind == "Z") & (DailyReport.day == day.isoformat())
        ):
            raise DuplicateId(f"the Z report for {day} was already printed", "report.z",
                              day=day.isoformat())
        body = store.daily_report(day)
        report_id = new_id()
        DailyReport.insert(
            id=report_id, seq=w.next_seq(), kind=kind, day=day.isoformat(), wall_us=w.us,
            trusted=moment.trusted, body=json.dumps(body, ensure_ascii=False, sort_keys=True),
        ).execute()
        store._audit(w, operator, f"report_{kind.lower()}", day.isoformat(), report_id)
        # HQ collects every report as printed (the chain's day figures, issue 13).
        store._event(w, "day_report", {"report": report_id, "kind": kind,
                                       "day": day.isoformat(), "operator": operator,
                                       **{name: body[name] for name in DAY_FIGURES}})
    return StoredReport(report_id, kind, day, body)


def reports_for(day: date) -> list[StoredReport]:
    """Every report stored for ``day``, in the order printed."""
    return [
        StoredReport(row.id, row.kind, date.fromisoformat(row.day), json.loads(row.body))
        for row in DailyReport.select().where(DailyReport.day == day.isoformat())
        .order_by(DailyReport.seq)
    ]
