"""Redemption: points as a cash deduction, and goods exchanged for points ([redeem])."""

from __future__ import annotations

from dataclasses import dataclass

from terminal.loyalty.errors import InvalidInput, RedeemRefused
from terminal.loyalty.rules import Goods, Rules


@dataclass(frozen=True)
class RedeemContext:
    """What the rules need to know about the member today."""

    balance: int
    redeemed_today: int
    offline_redeemed_today: int
    online: bool  # whether HQ answered: offline, the allowance applies


def deduction_fen(rules: Rules, points: int) -> int:
    """The cash value of ``points``, rounded down to whole fen."""
    return points * 100 // rules.redeem.points_per_yuan


def max_redeemable(rules: Rules, ctx: RedeemContext, due_fen: int) -> int:
    """The most points the member may redeem against ``due_fen`` (0 if below the minimum)."""
    r = rules.redeem
    limit = max(0, ctx.balance)
    cap_fen = due_fen * r.max_percent_of_sale // 100
    limit = min(limit, cap_fen * r.points_per_yuan // 100)
    if r.per_member_per_day is not None:
        limit = min(limit, r.per_member_per_day - ctx.redeemed_today)
    if not ctx.online:
        limit = min(limit, r.offline_allowance - ctx.offline_redeemed_today)
    limit -= limit % r.step_points
    return limit if limit >= max(r.min_points, 1) else 0


def _check_points_value(points: object) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput(f"points to redeem must be a whole number, not {points!r}",
                           "sale.redeem_points", why="redeem.points.whole", points=repr(points))
    if points < 0:
        raise InvalidInput(f"points to redeem cannot be negative ({points})",
                           "sale.redeem_points", why="redeem.points.negative", points=points)
    return points


def _check_common(rules: Rules, points: int, ctx: RedeemContext) -> None:
    r = rules.redeem
    if points > ctx.balance:
        raise RedeemRefused(
            f"{points} points is more than the balance ({max(ctx.balance, 0)})", "balance",
            points=points, balance=max(ctx.balance, 0),
        )
    if r.per_member_per_day is not None and ctx.redeemed_today + points > r.per_member_per_day:
        left = max(0, r.per_member_per_day - ctx.redeemed_today)
        raise RedeemRefused(
            f"{points} points is over redeem.per_member_per_day ({r.per_member_per_day}; "
            f"{left} left today)",
            "redeem.per_member_per_day", points=points, limit=r.per_member_per_day, left=left,
        )
    if not ctx.online and ctx.offline_redeemed_today + points > r.offline_allowance:
        left = max(0, r.offline_allowance - ctx.offline_redeemed_today)
        raise RedeemRefused(
            f"HQ is unreachable: {points} points is over redeem.offline_allowance "
            f"({r.offline_allowance}; {left} left today)",
            "redeem.offline_allowance", points=points, limit=r.offline_allowance, left=left,
        )


def check_deduction(rules: Rules, points: object, ctx: RedeemContext, due_fen: int) -> int:
    """Check a cash-deduction redemption and return its value in fen."""
    value = _check_points_value(points)
    if value == 0:
        return 0
    r = rules.redeem
    if value < r.min_points:
        raise RedeemRefused(
            f"{value} points is below redeem.min_points ({r.min_points})", "redeem.min_points",
            points=value, least=r.min_points,
        )
    if value % r.step_points:
        raise RedeemRefused(
            f"{value} points is not a multiple of redeem.step_points ({r.step_points})",
            "redeem.step_points", points=value, step=r.step_points,
        )
    fen = deduction_fen(rules, value)
    cap = due_fen * r.max_percent_of_sale // 100
    if fen > cap:
        raise RedeemRefused(
            f"{value} points ({fen} fen) is more than redeem.max_percent_of_sale "
            f"({r.max_percent_of_sale}% of {due_fen} fen = {cap} fen)",
            "redeem.max_percent_of_sale", points=value, fen=fen,
            percent=r.max_percent_of_sale, due_fen=due_fen, cap_fen=cap,
        )
    _check_common(rules, value, ctx)
    return fen


def check_exchange(
    rules: Rules, sku: str, qty: object, ctx: RedeemContext, exchanged_before: int
) -> tuple[Goods, int]:
    """Check a goods exchange; return the goods and the points it costs."""
    goods = rules.redeem.goods.get(sku)
    if goods is None:
        raise RedeemRefused(f"{sku!r} is not in redeem.goods", "redeem.goods", sku=sku)
    if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
        raise InvalidInput(f"exchange quantity {qty!r} is not a whole number of 1 or more",
                           "exchange.qty", qty=repr(qty))
    if goods.per_sale_limit is not None and qty > goods.per_sale_limit:
        raise RedeemRefused(
            f"{qty} x {goods.sku} is over its per_sale_limit ({goods.per_sale_limit})",
            "redeem.goods.per_sale_limit", qty=qty, sku=goods.sku, limit=goods.per_sale_limit,
        )
    if goods.per_member_limit is not None and exchanged_before + qty > goods.per_member_limit:
        raise RedeemRefused(
            f"{goods.sku}: {exchanged_before} already exchanged, {qty} more is over its "
            f"per_member_limit ({goods.per_member_limit})",
            "redeem.goods.per_member_limit", sku=goods.sku, before=exchanged_before, qty=qty,
            limit=goods.per_member_limit,
        )
    points = goods.points * qty
    _check_common(rules, points, ctx)
    return goods, points
