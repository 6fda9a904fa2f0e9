"""Points a sale earns, computed exactly as rules.toml's [earn] comment defines.

    for each eligible line: amount / 100 * points_per_yuan * category multiplier
    sum, * tier multiplier * the highest promotion in force * birthday multiplier
    round once, + fixed SKU points (per unit, never multiplied), clip to the caps.

Eligible lines are those outside ``exclude_categories``; excluded lines earn nothing, fixed SKU
points included. A sale paying less than ``min_sale_fen`` earns nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from math import gcd

from terminal.loyalty.calendar import birthday_in_window
from terminal.loyalty.clock import Moment
from terminal.loyalty.money import round_points
from terminal.loyalty.pricing import Pricing
from terminal.loyalty.rules import Promotion, Rules, Tier


@dataclass(frozen=True)
class EarnedLine:
    """What one line of the sale earned before the sale's multipliers (exact)."""

    sku: str
    name: str
    amount_fen: int  # paid or list, by earn.basis
    multiplier: Fraction  # the category's
    points: Fraction  # amount in yuan * points_per_yuan * multiplier; 0 when excluded
    excluded: bool = False


@dataclass(frozen=True)
class EarnSteps:
    """The earning, step by step, as the receipt explains it in words; the same numbers the
    points were computed from, so the explanation adds up exactly."""

    lines: tuple[EarnedLine, ...]
    basis: str  # "paid" (after discounts and deductions) or "list"
    points_per_yuan: Fraction
    multipliers: tuple[tuple[str, str, Fraction], ...]  # (kind, name, x): tier, promotion, ...
    total: Fraction  # before rounding
    rounding: str
    rounded: int
    fixed: int  # fixed SKU points, never multiplied
    cap: tuple[str, int] | None = None  # (which cap, the points it left)


@dataclass(frozen=True)
class Earning:
    points: int
    why: list[str] = field(default_factory=list)
    promotion: str | None = None
    birthday: bool = False
    capped: str | None = None  # "per_sale" or "per_member_per_day" when a cap clipped it
    steps: EarnSteps | None = None  # None when the sale earns nothing (below the minimum)


_ONE = Fraction(1)


def promotion_in_force(promo: Promotion, moment: Moment, rules: Rules) -> bool:
    checks = moment.window_checks
    if not checks:
        return False
    for at in checks:
        if promo.starts is not None and at < promo.starts:
            return False
        if promo.ends is not None and at >= promo.ends:
            return False
        if promo.weekdays and at.astimezone(rules.zone).weekday() not in promo.weekdays:
            return False
    return True


def birthday_applies(birthday: date | None, moment: Moment, rules: Rules) -> bool:
    rule = rules.earn.birthday
    if rule is None or birthday is None or not moment.window_checks:
        return False
    return all(
        birthday_in_window(birthday, at.astimezone(rules.zone).date(), rule.window)
        for at in moment.window_checks
    )


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _fmt_ratio(numerator: int, denominator: int) -> str:
    """``_fmt(Fraction(numerator, denominator))`` without building the Fraction: an integer
    quotient as an integer, else the quotient as a float (int / int is correctly rounded, so
    it is the float of the reduced fraction too)."""
    if numerator % denominator == 0:
        return str(numerator // denominator)
    return f"{numerator / denominator:g}"


def compute_earning(
    rules: Rules,
    pricing: Pricing,
    tier: Tier,
    moment: Moment,
    birthday: date | None,
    earned_today: int,
    explained: bool = True,
) -> Earning:
    """The sale's points and their words; with ``explained`` the steps too (EarnSteps: what a
    till's receipt explains; HQ replaying a till's sale reads only the points and the words)."""
    earn = rules.earn
    if pricing.paid_fen < earn.min_sale_fen:
        return Earning(0, [f"paid {pricing.paid_fen} fen is below earn.min_sale_fen "
                           f"({earn.min_sale_fen})"])
    why: list[str] = []
    # Exact rational arithmetic on integer numerators and denominators (the same values as
    # with Fraction, a few times faster): base = base_n / base_d, never reduced on the way.
    base_n, base_d = 0, 1
    rate_n, rate_d = earn.points_per_yuan.numerator, 100 * earn.points_per_yuan.denominator
    fixed = 0
    lines: list[EarnedLine] = []
    multipliers: list[tuple[str, str, Fraction]] = []
    for priced in pricing.lines:
        line = priced.line
        if line.category in earn.exclude_categories:
            why.append(f"{line.sku} {line.category} excluded")
            if explained:
                lines.append(EarnedLine(line.sku, line.name, 0, _ONE, Fraction(0),
                                        excluded=True))
            continue
        amount = priced.paid_fen if earn.basis == "paid" else line.list_fen
        multiplier = earn.categories.get(line.category, _ONE)
        points_n = amount * rate_n * multiplier.numerator
        points_d = rate_d * multiplier.denominator
        if points_d == base_d:
            base_n += points_n
        else:
            common = base_d // gcd(base_d, points_d) * points_d
            base_n = base_n * (common // base_d) + points_n * (common // points_d)
            base_d = common
        why.append(f"{line.sku} {_fmt_ratio(amount, 100)} yuan x{_fmt(multiplier)}"
                   f" = {_fmt_ratio(points_n, points_d)}")
        if explained:
            lines.append(EarnedLine(line.sku, line.name, amount, multiplier,
                                    Fraction(points_n, points_d)))
        fixed += earn.sku_points.get(line.sku, 0) * line.qty
    total = Fraction(base_n, base_d) * tier.earn_multiplier
    if tier.earn_multiplier != 1:
        why.append(f"tier {tier.name} x{_fmt(tier.earn_multiplier)}")
        multipliers.append(("tier", tier.name, tier.earn_multiplier))
    in_force = [p for p in earn.promotions if promotion_in_force(p, moment, rules)]
    best = max(in_force, key=lambda p: p.multiplier, default=None)
    if best is not None:
        total *= best.multiplier
        why.append(f"{best.name} x{_fmt(best.multiplier)}")
        multipliers.append(("promotion", best.name, best.multiplier))
    on_birthday = birthday_applies(birthday, moment, rules)
    if on_birthday and earn.birthday is not None:
        total *= earn.birthday.multiplier
        why.append(f"birthday x{_fmt(earn.birthday.multiplier)}")
        multipliers.append(("birthday", "", earn.birthday.multiplier))
    points = round_points(total, earn.rounding)
    rounded = points
    why.append(f"{_fmt(total)} {earn.rounding} {points}")
    if fixed:
        points += fixed
        why.append(f"+{fixed} fixed SKU points")
    capped = None
    if earn.cap_per_sale is not None and points > earn.cap_per_sale:
        points, capped = earn.cap_per_sale, "per_sale"
        why.append(f"capped at earn.caps.per_sale ({earn.cap_per_sale})")
    if earn.cap_per_member_per_day is not None:
        room = max(0, earn.cap_per_member_per_day - earned_today)
        if points > room:
            points, capped = room, "per_member_per_day"
            why.append(f"capped by earn.caps.per_member_per_day ({room} left today)")
    steps = EarnSteps(tuple(lines), earn.basis, earn.points_per_yuan, tuple(multipliers), total,
                      earn.rounding, rounded, fixed, (capped, points) if capped else None
                      ) if explained else None
    return Earning(points, why, best.name if best else None, on_birthday, capped, steps)


class Earner:
    """:func:`compute_earning`'s points alone, for replaying many sales under one rule set (the
    rules studio's backtest): what depends only on the rules is worked out once here, and no
    words or steps are built. The arithmetic is the same exact arithmetic in integers: every
    eligible line's ``amount * points_per_yuan * category multiplier / 100`` over one common
    denominator, times the tier's, the best promotion's and the birthday's multipliers, rounded
    once (floor, ceil or half up of a non-negative fraction do not depend on reducing it), plus
    the fixed SKU points, clipped to the caps (tests/loyalty/test_earner.py compares the two)."""

    def __init__(self, rules: Rules) -> None:
        earn = self.earn = rules.earn
        self.rules = rules
        rate = earn.points_per_yuan
        ratios = {category: rate * multiplier / 100
                  for category, multiplier in earn.categories.items()}
        plain = rate / 100
        denominator = plain.denominator
        for ratio in ratios.values():
            denominator = denominator // gcd(denominator, ratio.denominator) * ratio.denominator
        self.denominator = denominator
        # points * denominator a fen of each category earns (an integer by the choice above)
        self.factors = {category: ratio.numerator * (denominator // ratio.denominator)
                        for category, ratio in ratios.items()}
        self.plain = plain.numerator * (denominator // plain.denominator)
        self.weekdays = any(promo.weekdays for promo in earn.promotions)
        # birthday_in_window by (birthday's month and day, local day): it reads nothing else
        # of the birthday, so a month's window meets each key again and again (cProfile,
        # 8,208 sales: its three dates and monthrange calls 1.1 of 2.3 s of the earning)
        self._in_window: dict[tuple[int, int, date], bool] = {}

    def points(self, pricing: Pricing, tier: Tier, moment: Moment, birthday: date | None,
               earned_today: int) -> int:
        earn = self.earn
        if pricing.paid_fen < earn.min_sale_fen:
            return 0
        paid = earn.basis == "paid"
        excluded, factors, plain = earn.exclude_categories, self.factors, self.plain
        base = fixed = 0
        for priced in pricing.lines:
            line = priced.line
            if line.category in excluded:
                continue
            base += (priced.paid_fen if paid else line.qty * line.price_fen) * factors.get(
                line.category, plain)
            if earn.sku_points:
                fixed += earn.sku_points.get(line.sku, 0) * line.qty
        numerator = base * tier.earn_multiplier.numerator
        denominator = self.denominator * tier.earn_multiplier.denominator
        best = self._best_promotion(moment)
        if best is not None:
            numerator *= best.numerator
            denominator *= best.denominator
        if earn.birthday is not None and birthday is not None \
                and self._birthday(birthday, moment, earn.birthday.window):
            numerator *= earn.birthday.multiplier.numerator
            denominator *= earn.birthday.multiplier.denominator
        if earn.rounding == "floor":
            points = numerator // denominator
        elif earn.rounding == "ceil":
            points = -(-numerator // denominator)
        else:  # half up, as round_points
            points = (2 * numerator + denominator) // (2 * denominator)
        points += fixed
        if earn.cap_per_sale is not None and points > earn.cap_per_sale:
            points = earn.cap_per_sale
        if earn.cap_per_member_per_day is not None:
            points = min(points, max(0, earn.cap_per_member_per_day - earned_today))
        return points

    def _birthday(self, birthday: date, moment: Moment, window: str) -> bool:
        """:func:`birthday_applies`, each (month, day, local day) reckoned once."""
        checks = moment.window_checks
        if not checks:
            return False
        zone, known = self.rules.zone, self._in_window
        for at in checks:
            day = at.astimezone(zone).date()
            key = (birthday.month, birthday.day, day)
            hit = known.get(key)
            if hit is None:
                hit = known[key] = birthday_in_window(birthday, day, window)
            if not hit:
                return False
        return True

    def _best_promotion(self, moment: Moment) -> Fraction | None:
        """The highest multiplier among the promotions in force (as :func:`promotion_in_force`
        decides each), each check time's weekday reckoned once."""
        promotions = self.earn.promotions
        checks = moment.window_checks if promotions else ()
        if not checks:
            return None
        zone = self.rules.zone
        days = [at.astimezone(zone).weekday() for at in checks] if self.weekdays else []
        best: Fraction | None = None
        for promo in promotions:
            if best is not None and promo.multiplier <= best:
                continue
            starts, ends, weekdays = promo.starts, promo.ends, promo.weekdays
            held = True
            for at in checks:
                if (starts is not None and at < starts) or (ends is not None and at >= ends):
                    held = False
                    break
            if held and weekdays:
                for day in days:
                    if day not in weekdays:
                        held = False
                        break
            if held:
                best = promo.multiplier
        return best
