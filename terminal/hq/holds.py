"""Which hold covers a till's redemption, and the rule for one with no hold (issue 16, break 3).

A till redeems a member's points against HQ's balance by asking HQ to hold them first; the sale's
event then posts that hold. A redemption HQ holds nothing for (the till could not reach HQ, or
never asked) is taken only within the rules' ``offline_allowance`` for the member and day,
counted chain-wide by HQ's own day counters: otherwise any till could spend any member's points
by saying so.

A hold covers a redemption only if it is for the same member, made by the same till (the topic
the broker vouched for when it was asked), for at least the points redeemed, and not posted
already (one hold, one redemption). A voided hold still covers: HQ said yes, and the till sold.
A posted one means its record is here already: :func:`posted` lets the ledger refuse the repeat
as a repeat.
"""

from __future__ import annotations

from terminal.hq.models import MemberHold


def covering(hold_id: str, card_hash: str, points: int, store: str,
             terminal: str) -> MemberHold | None:
    hold = MemberHold.get_or_none(MemberHold.id == hold_id)
    if hold is None or hold.state == "posted":
        return None
    if (hold.card_hash, hold.store, hold.terminal) != (card_hash, store, terminal):
        return None
    return hold if hold.points >= points else None


def posted(hold_id: str) -> bool:
    return MemberHold.select().where((MemberHold.id == hold_id)
                                     & (MemberHold.state == "posted")).exists()


def post(hold: MemberHold, at_us: int) -> None:
    """Settle ``hold`` in the transaction that posts its redemption: the points leave the member
    by that redemption, so the hold stops counting against what is available."""
    MemberHold.update(state="posted", settled_us=at_us).where(MemberHold.id == hold.id).execute()


def over_allowance(points: int, allowance: int, used_today: int) -> str:
    """The review note for a redemption without a hold, or "" when the allowance covers it."""
    left = max(0, allowance - used_today)
    if points <= left:
        return ""
    return (f"redeem.offline_allowance: {points} points redeemed without an HQ hold, over the "
            f"offline allowance ({left} left for the member today): not taken from the member")


