"""What a redemption (a sale's or a goods exchange's) is checked against, and the entries that
take its points: from this ledger's lots, held at HQ, or posted by HQ as an overdraft.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from terminal.loyalty import ledger, redemption
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.store.accounts import Accounts
from terminal.loyalty.store.hotpath import DayCounts
from terminal.loyalty.store.models import Member

# HQ posting a redemption a till already gave (``reconcile``): the till checked the balance,
# the day caps and the offline allowance; what the member no longer has becomes an overdraft.
_RECONCILING = redemption.RedeemContext(balance=2**62, redeemed_today=0,
                                        offline_redeemed_today=0, online=True)


@dataclass(frozen=True)
class HeldAtHq:
    """A redemption whose points HQ holds: HQ's balance for the member when the till asked,
    and the hold (``offline`` when HQ could not be asked and posts it on the sale's event)."""

    balance: int
    hold_id: str
    offline: bool = False

    @property
    def reason(self) -> str:
        how = "offline hold, HQ posts it" if self.offline else "held at HQ"
        return f"{how}: {self.hold_id}"


class Redeeming(Accounts):
    """The redemption checks and entries shared by sales and goods exchanges."""

    def _redeem(
        self, account: ledger.Account, points: int, sale_id: str, operator: str, reason: str,
        reconcile: str, held_at_hq: HeldAtHq | None = None,
    ) -> list[ledger.Entry]:
        """The redeem entry; when reconciling, what the lots cannot cover is a separate negative
        ``adjust`` entry whose reason names the overdraft (DESIGN promise 4). Held at HQ, the
        one redeem entry takes what the lots here hold and carries the rest as debt."""
        if held_at_hq is not None:
            return [account.debit(
                ledger.Entry(kind=ledger.REDEEM, points=-points, sale_id=sale_id,
                             reason=f"{reason}; {held_at_hq.reason}" if reason
                             else held_at_hq.reason, operator=operator),
                allow_debt=True,
            )]
        available = sum(lot.remaining for lot in account.open_lots())
        short = max(0, points - available) if reconcile else 0
        entries = []
        if points > short:
            entries.append(account.debit(
                ledger.Entry(kind=ledger.REDEEM, points=short - points, sale_id=sale_id,
                             reason=reason, operator=operator),
                allow_debt=False,
            ))
        if short:
            entries.append(account.debit(
                ledger.Entry(kind=ledger.ADJUST, points=-short, sale_id=sale_id,
                             reason=f"overdraft: {short} of {points} points redeemed at "
                                    f"{reconcile} beyond the chain balance",
                             operator=operator),
                allow_debt=True,
            ))
        return entries

    def _redeem_context(
        self, member: Member, moment: Moment, online: bool, today: DayCounts | None = None,
        balance: int | None = None,
    ) -> Any:
        today = today or self._today(member, moment)
        return redemption.RedeemContext(
            balance=member.balance if balance is None else balance,
            redeemed_today=today.redeemed,
            offline_redeemed_today=today.offline_redeemed,
            online=online,
        )

    @staticmethod
    def _check_hold(held_at_hq: HeldAtHq | None, reconcile: str, field: str) -> None:
        if held_at_hq is not None and reconcile:
            raise InvalidInput("HQ posting a till's redemption does not redeem against itself",
                               field)

    def _checked_against(
        self, member: Member, moment: Moment, online: bool, reconcile: str,
        held_at_hq: HeldAtHq | None, today: DayCounts | None = None,
    ) -> Any:
        """What a redemption (a sale's or a goods exchange's) is checked against: nothing but
        the rules when HQ posts what a till gave (``reconcile``), HQ's balance when the points
        are held at HQ, else this ledger's balance; the day caps and the offline allowance
        apply to both of the last two."""
        if reconcile:
            return _RECONCILING
        return self._redeem_context(member, moment, online, today,
                                    balance=held_at_hq.balance if held_at_hq else None)
