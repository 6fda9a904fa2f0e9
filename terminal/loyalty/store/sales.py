"""Sales: the subtotal quote and the recorded sale, with its earning, redemption and the
referrer's bonus on a member's first purchase.
"""

from __future__ import annotations

import json
from datetime import date

from terminal.loyalty import ledger, redemption
from terminal.loyalty.clock import Moment
from terminal.loyalty.earning import compute_earning
from terminal.loyalty.errors import DuplicateId, InvalidInput, RedeemRefused
from terminal.loyalty.operations import TENDERS, Quote, SaleRequest, SaleResult
from terminal.loyalty.pricing import check_lines, price
from terminal.loyalty.store import hotpath
from terminal.loyalty.store.members import Members
from terminal.loyalty.store.models import Member
from terminal.loyalty.store.redeeming import HeldAtHq, Redeeming
from terminal.loyalty.store.writer import ID, Writer

_DETAIL_JSON = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False)


class Sales(Members, Redeeming):
    """Quoting and recording sales."""

    def _check_sale(self, req: SaleRequest) -> None:
        if not isinstance(req.id, str) or not ID.fullmatch(req.id):
            raise InvalidInput(f"sale id {req.id!r} is not 1-64 letters, digits or ._:-",
                               "sale.id")
        if req.tender not in TENDERS:
            raise InvalidInput(f"tender {req.tender!r} is not one of {', '.join(TENDERS)}",
                               "sale.tender")
        check_lines(req.lines)

    def quote(self, req: SaleRequest, moment: Moment, online: bool = True,
              hq_balance: int | None = None) -> Quote:
        """The subtotal view: discount, amount due, balance and the largest deduction allowed.
        ``hq_balance`` (HQ's answer to the till's lookup) stands for the local balance: HQ is
        authoritative for what a member may redeem (DESIGN promise 4)."""
        check_lines(req.lines)
        member, today = self._member_today(req.card, moment) if req.card else (None, None)
        if member is None:
            pricing = price(req.lines, 0, 0)
            return Quote(pricing.list_fen, pricing.discount_fen, pricing.due_fen, 0, 0, 0)
        tier, balance = self.standing(member, moment)
        pricing = price(req.lines, self.rules.tier(tier).discount_percent, 0)
        ctx = self._redeem_context(member, moment, online, today,
                                   balance=balance if hq_balance is None else hq_balance)
        most = redemption.max_redeemable(self.rules, ctx, pricing.due_fen)
        return Quote(
            pricing.list_fen,
            pricing.discount_fen,
            pricing.due_fen,
            ctx.balance,
            most,
            redemption.deduction_fen(self.rules, most),
        )

    def sale(
        self, req: SaleRequest, moment: Moment, online: bool = True, reconcile: str = "",
        held_at_hq: HeldAtHq | None = None,
    ) -> SaleResult:
        """Record a sale. ``req.card`` may be a :class:`CardRef`. ``reconcile`` (HQ posting a
        till's sale) names where it happened: the redemption is taken as given and any part the
        member no longer has is recorded as an explicit negative ``adjust`` entry.
        ``held_at_hq`` (a till redeeming against HQ's balance) checks the redemption against
        HQ's balance; what this ledger's lots cannot cover is recorded as debt on the redeem
        entry, whose reason names the hold (see docs/sync.md)."""
        self._check_sale(req)
        self._check_hold(held_at_hq, reconcile, "sale.hold")
        rules = self.rules
        spend: int | None = None
        with self._writing(moment) as w:
            if self.sql.one(hotpath.SALE_EXISTS, (req.id,)):
                raise DuplicateId(f"sale {req.id} is already recorded", "sale.id", sale=req.id)
            member, today = self._member_today(req.card, moment) if req.card else (None, None)
            if member is None and req.redeem_points:
                raise RedeemRefused("an anonymous sale cannot redeem points", "sale.card",
                                    why="sale.card")
            if member is not None:
                self._expire_due(w, member)
                self._review_tier(member, moment)
            tier = rules.tier(member.tier) if member else rules.tiers[0]
            pct = tier.discount_percent if member else 0
            pricing = price(req.lines, pct, 0)
            if member is not None:
                ctx = self._checked_against(member, moment, online, reconcile, held_at_hq, today)
                fen = redemption.check_deduction(rules, req.redeem_points, ctx, pricing.due_fen)
                if fen:
                    pricing = price(req.lines, pct, fen)
            earning = None
            if member is not None and today is not None:
                birthday = date.fromisoformat(member.birthday) if member.birthday else None
                earning = compute_earning(rules, pricing, tier, moment, birthday, today.earned,
                                          self.explained)
            account = None
            if member is not None:
                # Only a redemption needs the lots; an earning sale credits on top of them.
                account = self._account(member) if req.redeem_points else ledger.Account(
                    debt=member.debt, unloaded=member.balance + member.debt)
            entries: list[ledger.Entry] = []
            if member is not None and account is not None and req.redeem_points:
                entries += self._redeem(account, req.redeem_points, req.id, req.operator, "",
                                        reconcile, held_at_hq)
            if account is not None and earning is not None and earning.points:
                entries.append(self._credit_entry(
                    account, ledger.Entry(kind=ledger.EARN, points=earning.points,
                                          sale_id=req.id), moment
                ))
            links = {e.kind: e.id for e in entries}
            seq = w.next_seq()
            earned = earning.points if earning else 0
            redeemed = req.redeem_points if member else 0
            detail = {
                "why": earning.why if earning else [],
                "promotion": earning.promotion if earning else None,
                "birthday": earning.birthday if earning else False,
            }
            self.sql.run(hotpath.INSERT_SALE, (
                req.id, seq, member.id if member else None, w.us, moment.trusted, req.tender,
                pricing.list_fen, pricing.discount_fen, pricing.deduction_fen, pricing.paid_fen,
                earned, redeemed, links.get(ledger.EARN), links.get(ledger.REDEEM),
                tier.name if member else "", req.operator,
                _DETAIL_JSON(detail),
            ))
            self.sql.many(hotpath.INSERT_SALE_LINE, [
                (req.id, number, p.line.sku, p.line.name, p.line.category, p.line.qty,
                 p.line.price_fen, p.line.list_fen, p.paid_fen)
                for number, p in enumerate(pricing.lines, 1)
            ])
            if member is not None and account is not None:
                for entry in entries:
                    self._write_entry(w, member, entry)
                self._count_day(
                    w, member,
                    earned=earned,
                    redeemed=redeemed,
                    offline_redeemed=0 if online else redeemed,
                )
                self._save_account(member, account)
                self._pay_referral(w, member)
                spend = self._upgrade_tier(member, moment)
            if self.outbox:  # HQ's ledger reports to no one: no event body to build
                self._event(w, "sale", {
                    "sale": req.id,
                    "member": member.id if member else None,
                    "card_hash": member.card_hash if member else None,
                    "tender": req.tender,
                    "redeem_points": redeemed,
                    "hold": held_at_hq.hold_id if held_at_hq is not None and redeemed else None,
                    "online": online,
                    "lines": [
                        {"sku": p.line.sku, "name": p.line.name, "category": p.line.category,
                         "qty": p.line.qty, "price_fen": p.line.price_fen, "paid_fen": p.paid_fen}
                        for p in pricing.lines
                    ],
                    "list_fen": pricing.list_fen,
                    "discount_fen": pricing.discount_fen,
                    "deduction_fen": pricing.deduction_fen,
                    "paid_fen": pricing.paid_fen,
                    "points_earned": earned,
                    "operator": req.operator,
                })
            # Read before the commit: the same rows, without a read transaction of its own.
            view = self.member_view(member, moment, spend) if member and self.views else None
        return SaleResult(
            id=req.id,
            seq=seq,
            list_fen=pricing.list_fen,
            discount_fen=pricing.discount_fen,
            deduction_fen=pricing.deduction_fen,
            paid_fen=pricing.paid_fen,
            points_earned=earned,
            points_redeemed=redeemed,
            why="; ".join(earning.why) if earning else "anonymous sale: no points",
            promotion=earning.promotion if earning else None,
            birthday=earning.birthday if earning else False,
            line_paid_fen=[p.paid_fen for p in pricing.lines],
            member=view,
            earned=earning.steps if earning and member else None,
        )

    def _pay_referral(self, w: Writer, member: Member) -> None:
        """The referrer's bonus, credited once, when the referred member first buys."""
        bonus = self.rules.earn.bonus_referral
        if not member.referrer_id or member.referral_paid or not bonus:
            return
        referrer = Member.get_by_id(member.referrer_id)
        self._expire_due(w, referrer)
        account = self._account(referrer)
        self._credit(w, referrer, account, ledger.BONUS, bonus, reason=f"referral:{member.id}")
        self._save_account(referrer, account)
        member.referral_paid = True
        Member.update(referral_paid=True).where(Member.id == member.id).execute()
