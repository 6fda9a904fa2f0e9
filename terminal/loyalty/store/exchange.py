"""Goods exchanged for points, and manual points adjustments."""

from __future__ import annotations

from peewee import fn

from terminal.loyalty import ledger, redemption
from terminal.loyalty.clock import Moment
from terminal.loyalty.errors import AdjustRefused, DuplicateId, InvalidInput
from terminal.loyalty.ids import new_id
from terminal.loyalty.operations import ExchangeResult, MemberView
from terminal.loyalty.store.accounts import CardRef
from terminal.loyalty.store.hotpath import MemberRow
from terminal.loyalty.store.members import Members
from terminal.loyalty.store.models import Exchange, Member
from terminal.loyalty.store.redeeming import HeldAtHq, Redeeming
from terminal.loyalty.store.writer import ID, Writer

MAX_ADJUST = 10_000_000


class Exchanges(Members, Redeeming):
    """Goods for points and manual adjustments."""

    def exchange(
        self, card: str | CardRef, sku: str, qty: object, moment: Moment, online: bool = True,
        operator: str = "", reconcile: str = "", held_at_hq: HeldAtHq | None = None,
        exchange_id: str | None = None,
    ) -> ExchangeResult:
        """Exchange goods for points. ``reconcile`` and ``held_at_hq`` work as for
        :meth:`sale`'s redemption: held at HQ, the exchange is checked against HQ's balance and
        what this ledger's lots cannot cover is debt on the redeem entry, whose reason names the
        hold. ``exchange_id`` is given when the exchange must be named before it is recorded
        (the till's hold at HQ is named by it; HQ files a till's exchange under a chain-wide
        id); a repeated one is refused."""
        self._check_hold(held_at_hq, reconcile, "exchange.hold")
        if exchange_id is not None and not ID.fullmatch(exchange_id):
            raise InvalidInput(f"exchange id {exchange_id!r} is not 1-64 letters, digits or "
                               "._:-", "exchange.id")
        with self._writing(moment) as w:
            if exchange_id is not None and Exchange.get_or_none(Exchange.id == exchange_id):
                raise DuplicateId(f"exchange {exchange_id} is already recorded", "exchange.id",
                                  exchange=exchange_id)
            member = self._member(card)
            self._expire_due(w, member)
            before = (
                Exchange.select(fn.COALESCE(fn.SUM(Exchange.qty), 0))
                .where((Exchange.member == member.id) & (Exchange.sku == sku))
                .scalar()
            )
            ctx = self._checked_against(member, moment, online, reconcile, held_at_hq)
            goods, points = redemption.check_exchange(self.rules, sku, qty, ctx, int(before))
            exchange_id = exchange_id or new_id()
            account = self._account(member)
            taken = self._redeem(account, points, exchange_id, operator,
                                 f"exchange {goods.sku} x{qty}", reconcile, held_at_hq)
            Exchange.create(
                id=exchange_id, seq=w.next_seq(), member=member.id, sku=goods.sku, qty=qty,
                points=points, wall_us=w.us, trusted=moment.trusted, operator=operator,
            )
            for entry in taken:
                self._write_entry(w, member, entry)
            self._count_day(w, member, redeemed=points,
                            offline_redeemed=0 if online else points)
            self._save_account(member, account)
            self._event(w, "exchange", {
                "exchange": exchange_id, "member": member.id, "card_hash": member.card_hash,
                "sku": goods.sku, "qty": qty,
                "points": points, "online": online, "operator": operator,
                "hold": held_at_hq.hold_id if held_at_hq is not None else None,
            })
        return ExchangeResult(exchange_id, goods.sku, goods.name, int(qty),  # type: ignore[call-overload]
                              points, self.member_view(member, moment))

    def adjust(
        self, card: str | CardRef, points: object, reason: str, operator: str, moment: Moment,
        reconcile: str = "",
    ) -> MemberView:
        """A manual adjustment with its reason and operator; it may not overdraw the member,
        except when HQ posts (``reconcile``) one a till already made: then the part beyond the
        chain balance becomes debt and the reason says so."""
        check_adjustment(points, reason, operator)
        with self._writing(moment) as w:
            member = self._member(card)
            self._adjust(w, member, points, reason, operator, reconcile)  # type: ignore[arg-type]
        return self.member_view(member, moment)

    def _adjust(self, w: Writer, member: Member | MemberRow, points: int, reason: str,
                operator: str, reconcile: str = "") -> None:
        """:meth:`adjust`'s rows for one member inside the write transaction ``w``: the
        member's due expiries first, then the entry (a credit's lot expiring by the rules), the
        balance, the event and the audit row. HQ's grant of a campaign's bonus runs it for many
        members in one transaction (terminal.hq.member_ops.bulk)."""
        self._expire_due(w, member)
        account = self._account(member)
        if points > 0:
            entry = self._credit(w, member, account, ledger.ADJUST, points,
                                 reason=reason, operator=operator)
        else:
            if reconcile and -points > account.balance:
                reason = f"{reason} (overdraft: {reconcile})"
            elif -points > account.balance:
                raise AdjustRefused(
                    f"an adjustment of {points} would overdraw the balance "
                    f"({account.balance})", "adjust.points", why="adjust.points.overdraw",
                    points=points, balance=account.balance,
                )
            entry = account.debit(
                ledger.Entry(kind=ledger.ADJUST, points=points, reason=reason,
                             operator=operator),
                allow_debt=bool(reconcile),
            )
            self._write_entry(w, member, entry)
        self._save_account(member, account)
        self._event(w, "adjust", {"entry": entry.id, "member": member.id,
                                  "card_hash": member.card_hash, "points": points,
                                  "reason": reason, "operator": operator})
        self._audit(w, operator, "adjust", member.id, f"{points} {reason}")


def check_adjustment(points: object, reason: str, operator: str) -> None:
    """What :meth:`Exchanges.adjust` refuses before anything is read or written."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidInput(f"an adjustment is a non-zero whole number of points, not "
                           f"{points!r}", "adjust.points", why="adjust.points.whole",
                           points=repr(points))
    if abs(points) > MAX_ADJUST:
        raise InvalidInput(f"an adjustment of {points} is over the limit of {MAX_ADJUST}",
                           "adjust.points", why="adjust.points.over", points=points,
                           most=MAX_ADJUST)
    if not (reason or "").strip():
        raise InvalidInput("an adjustment needs a reason", "adjust.reason", why="adjust.reason")
    if not (operator or "").strip():
        raise InvalidInput("an adjustment needs the operator's name", "adjust.operator",
                           why="adjust.operator")
