"""The X and Z reports: printed and stored; Z closes the day."""

from __future__ import annotations

from terminal.app import receipts
from terminal.app.catalogue import said
from terminal.app.modes import Mode
from terminal.app.till_base import TillBase
from terminal.loyalty.errors import Refused
from terminal.loyalty.money import yuan


class DayReports(TillBase):
    """The end-of-day reports."""

    async def _confirm_z(self, approver: str) -> None:
        self.approver = approver
        self.switch_to(Mode.CONFIRM_Z)
        await self._prompt()

    async def _confirm_z_enter(self) -> None:
        self.switch_to(Mode.READY)
        await self._report("Z", self.approver)

    async def _report(self, kind: str, approver: str) -> None:
        try:
            report = await self.ledger.report(kind, approver)
        except Refused as exc:
            await self.refuse(exc)
            return
        sales = report.body["sales"]
        self._print(receipts.report_receipt(self._head(), kind, report.body),
                    f"{kind}-{report.day:%Y%m%d}-{self._stamp()}")
        await self.show(self._pair(f"{kind} {report.day:%m-%d}",
                                   f"{sales['count']} {self._label('SALES')}"),
                        self._pair(self._label("PAID"), yuan(sales["paid_fen"])),
                        prompt=said("report.done", report=kind, day=report.day))
