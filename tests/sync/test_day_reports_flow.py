"""A till's X and Z reports reach HQ through the broker: written with the report, published by
the outbox, applied by a real collector (Mosquitto started by the test), acked, and kept in
HQ's ``hq_day_report`` with the day's redemption in its figures."""

from __future__ import annotations

from terminal.hq.models import DayReport
from terminal.loyalty.clock import Moment
from terminal.loyalty.store import eod
from tests.sync.conftest import run
from tests.sync.harness import Chain, now


def test_x_and_z_reports_reach_hq_through_the_broker(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till = chain.till()
        hq = chain.hq()
        async with chain:
            first = now().astimezone(chain.rules.zone).date()
            await till.register("7100000001")
            await till.sell(50000, "7100000001")  # 500 points and the 100 for joining
            await till.sell(12000, "7100000001", redeem=500)  # 5.00 yuan paid with points
            today = now().astimezone(chain.rules.zone).date()
            printed = [await till.run(eod.write_report, till.store, kind, today, Moment(now()),
                                      "店长") for kind in ("X", "Z")]
            till.link.events_written()
            await chain.drained()  # every event, the reports included, acked by HQ

            def collected() -> list[tuple[str, str, int, int, int]]:
                return [(r.id, r.day, r.sales_count, r.deduction_fen, r.points_redeemed)
                        for r in DayReport.select().order_by(DayReport.wall_us)]

            # HQ keeps each report as the till printed it: its day's sales and what points paid.
            assert await hq.ledger.thread.run(collected) == [
                (report.id, today.isoformat(), report.body["sales"]["count"],
                 report.body["sales"]["deduction_fen"], report.body["points"]["redeemed"])
                for report in printed]
            assert [report.kind for report in printed] == ["X", "Z"]
            if first == today:  # no midnight in between: both sales, 5.00 yuan paid by points
                assert (printed[1].body["sales"]["count"],
                        printed[1].body["sales"]["deduction_fen"]) == (2, 500)

    run(scenario(), timeout=90)
