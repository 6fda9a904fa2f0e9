"""Points HQ holds for the sale in progress, and the member as HQ sees them: a redemption is
checked against HQ's balance when HQ answered the lookup (DESIGN promise 4).
"""

from __future__ import annotations

import dataclasses

from terminal.app.hqlink import Hold
from terminal.app.till_base import TillBase
from terminal.loyalty.operations import MemberView
from terminal.loyalty.store.ledger_store import HeldAtHq


class HqPoints(TillBase):
    """HQ's balance and holds for the member at the till."""

    def _hq_balance(self) -> int | None:
        remote = self.draft.remote
        return remote.balance if remote is not None else None

    def _held_at_hq(self, hold: Hold | None, points: int) -> HeldAtHq | None:
        """A redemption (a sale's or a goods exchange's) checked against HQ's balance, when HQ
        answered the lookup."""
        remote = self.draft.remote
        if remote is None or hold is None or not points:
            return None
        # HQ agreed to hold these points, so the member has at least them chain-wide.
        balance = remote.balance if hold.offline else max(remote.balance, hold.points)
        return HeldAtHq(balance, hold.id, hold.offline)

    def _online(self, hold: Hold | None) -> bool:
        """Whether a redemption counts as online: HQ reachable, and its hold (if any) really
        asked of HQ; an offline hold keeps to the rules' offline allowance."""
        return self.link.reachable and not (hold is not None and hold.offline)

    def _view_at_hq(self, member: MemberView, redeemed: int, earned: int = 0) -> MemberView:
        """The member as HQ will see them after this till's operation: HQ's balance less what
        was redeemed, plus what was earned (the local ledger holds only this till's share)."""
        remote = self.draft.remote
        if remote is None:
            return member
        return dataclasses.replace(member, balance=remote.balance - redeemed + earned)

    async def _release_hold(self) -> None:
        if self.hold is not None:
            hold, self.hold, self.sale_id = self.hold, None, None
            await self.link.void(hold)
