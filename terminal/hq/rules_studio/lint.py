"""Warnings for the dangerous changes of a candidate rule set against the rules in force.

A rule set runs offline on every till, so a mistake costs money before anyone can take it back.
Each finding names a key the way :mod:`terminal.hq.rules_studio.diff` does (arrays of tables by
their name, category or sku: ``earn.category[fresh].multiplier``) and says what changed in
Chinese and in English. Only what the candidate changes is judged: a promotion the rules in force
already ran is not warned about again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from terminal.loyalty.rules import Expiry, Promotion, Rules

_TICK = timedelta(microseconds=1)  # the last instant of a window that ends exclusively
GROWTH_LIMIT = 2  # an earn rate or a multiplier more than this many times the one in force


@dataclass(frozen=True)
class Finding:
    code: str  # earn_rate_up | multiplier_up | redeem_value_up | expiry_shortened |
    #            tier_threshold_lowered | cap_removed | promotion_past | promotion_overlap |
    #            balances_worth_more
    key: str
    zh: str
    en: str

    def text(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


def lint(in_force: Rules, candidate: Rules, now: datetime) -> list[Finding]:
    """Every warning, in a fixed order (by check, then by key), so two runs read the same."""
    findings: list[Finding] = []
    findings += _earn_rates(in_force, candidate)
    findings += _redemption(in_force, candidate)
    findings += _expiry(in_force.expiry, candidate.expiry)
    findings += _tiers(in_force, candidate)
    findings += _caps(in_force, candidate)
    findings += _promotions(in_force, candidate, now)
    return findings


def _num(value: Fraction | int) -> str:
    exact = Fraction(value)
    return str(exact.numerator) if exact.denominator == 1 else f"{float(exact):g}"


def _grown(key: str, what_zh: str, what_en: str, old: Fraction, new: Fraction,
           code: str = "multiplier_up") -> list[Finding]:
    if new <= old * GROWTH_LIMIT:
        return []
    factor = f"{float(new / old):.3g}x" if old else "from 0"
    return [Finding(code, key,
                    f"{what_zh}从 {_num(old)} 提高到 {_num(new)}（{factor}），"
                    f"超过 {GROWTH_LIMIT} 倍",
                    f"{what_en} goes from {_num(old)} to {_num(new)} ({factor}), more than "
                    f"{GROWTH_LIMIT}x")]


def _earn_rates(old: Rules, new: Rules) -> list[Finding]:
    found = _grown("earn.points_per_yuan", "每元积分", "the earn rate (points per yuan)",
                   old.earn.points_per_yuan, new.earn.points_per_yuan, "earn_rate_up")
    for category in sorted(new.earn.categories):
        found += _grown(f"earn.category[{category}].multiplier", f"品类 {category} 的倍数",
                        f"the multiplier of category {category}",
                        old.earn.categories.get(category, Fraction(1)),
                        new.earn.categories[category])
    old_tiers = {tier.name: tier for tier in old.tiers}
    for tier in new.tiers:
        if tier.name in old_tiers:
            found += _grown(f"tiers.level[{tier.name}].earn_multiplier",
                            f"等级 {tier.name} 的积分倍数",
                            f"the earn multiplier of tier {tier.name}",
                            old_tiers[tier.name].earn_multiplier, tier.earn_multiplier)
    old_promotions = {p.name: p for p in old.earn.promotions}
    for promotion in new.earn.promotions:
        before = old_promotions.get(promotion.name)
        found += _grown(f"earn.promotion[{promotion.name}].multiplier",
                        f"促销「{promotion.name}」的倍数", f"the multiplier of promotion "
                        f"{promotion.name!r}", before.multiplier if before else Fraction(1),
                        promotion.multiplier)
    if new.earn.birthday is not None:
        found += _grown("earn.birthday.multiplier", "生日倍数", "the birthday multiplier",
                        old.earn.birthday.multiplier if old.earn.birthday else Fraction(1),
                        new.earn.birthday.multiplier)
    return found


def _redemption(old: Rules, new: Rules) -> list[Finding]:
    found: list[Finding] = []
    old_rate, new_rate = old.redeem.points_per_yuan, new.redeem.points_per_yuan
    if new_rate < old_rate:
        found.append(Finding(
            "redeem_value_up", "redeem.points_per_yuan",
            f"抵扣 1 元所需积分从 {old_rate} 降到 {new_rate}：每个积分更值钱",
            f"a yuan off the bill takes {new_rate} points instead of {old_rate}: each point is "
            "worth more"))
    for sku, goods in sorted(new.redeem.goods.items()):
        before = old.redeem.goods.get(sku)
        if before is not None and goods.points < before.points:
            found.append(Finding(
                "redeem_value_up", f"redeem.goods[{sku}].points",
                f"兑换 {goods.name} 所需积分从 {before.points} 降到 {goods.points}",
                f"{goods.name} takes {goods.points} points instead of {before.points}"))
    if new_rate < old_rate:
        # Lots already earned are redeemed at the new rate: the chain's liability is revalued.
        percent = (Fraction(old_rate, new_rate) - 1) * 100
        found.append(Finding(
            "balances_worth_more", "redeem.points_per_yuan",
            f"会员现有积分全部按新比例兑换，价值提高 {_num(round(percent, 1))}%"
            f"（每积分 {_num(Fraction(100, old_rate))} 分 -> {_num(Fraction(100, new_rate))} 分）",
            f"every balance members hold is worth {_num(round(percent, 1))}% more (a point is "
            f"{_num(Fraction(100, old_rate))} fen -> {_num(Fraction(100, new_rate))} fen)"))
    return found


def _lifetime(expiry: Expiry) -> tuple[float, float]:
    """The least and the most months a lot lives under ``expiry``."""
    if expiry.policy == "never":
        return math.inf, math.inf
    if expiry.policy == "end_of_next_year":
        return 12, 24  # earned on 31 December: 12 months; on 1 January: 24
    return expiry.months, expiry.months


def _expiry(old: Expiry, new: Expiry) -> list[Finding]:
    (old_least, old_most), (new_least, new_most) = _lifetime(old), _lifetime(new)
    if new_least >= old_least and new_most >= old_most:
        return []

    def said(e: Expiry) -> tuple[str, str]:
        if e.policy == "never":
            return "永不过期", "never expire"
        if e.policy == "end_of_next_year":
            return "次年年底过期", "expire at the end of the next year"
        return f"{e.months} 个月后过期", f"expire {e.months} months after they are earned"

    (old_zh, old_en), (new_zh, new_en) = said(old), said(new)
    key = "expiry.months" if old.policy == new.policy else "expiry.policy"
    return [Finding("expiry_shortened", key, f"积分有效期缩短：从「{old_zh}」改为「{new_zh}」",
                    f"points expire sooner: they {new_en} instead of they {old_en}")]


def _tiers(old: Rules, new: Rules) -> list[Finding]:
    found: list[Finding] = []
    old_tiers = {tier.name: tier for tier in old.tiers}
    for tier in new.tiers:
        before = old_tiers.get(tier.name)
        if before is not None and tier.qualify_spend_fen < before.qualify_spend_fen:
            found.append(Finding(
                "tier_threshold_lowered", f"tiers.level[{tier.name}].qualify_spend_fen",
                f"等级 {tier.name} 的门槛从 {before.qualify_spend_fen / 100:.2f} 元降到 "
                f"{tier.qualify_spend_fen / 100:.2f} 元",
                f"tier {tier.name} qualifies at {tier.qualify_spend_fen / 100:.2f} yuan instead "
                f"of {before.qualify_spend_fen / 100:.2f}"))
    return found


def _caps(old: Rules, new: Rules) -> list[Finding]:
    caps = (("earn.caps.per_sale", "每单积分上限", "the cap on points per sale",
             old.earn.cap_per_sale, new.earn.cap_per_sale),
            ("earn.caps.per_member_per_day", "每位会员每日积分上限",
             "the cap on points a member earns per day",
             old.earn.cap_per_member_per_day, new.earn.cap_per_member_per_day),
            ("redeem.per_member_per_day", "每位会员每日兑换上限",
             "the cap on points a member redeems per day",
             old.redeem.per_member_per_day, new.redeem.per_member_per_day))
    return [Finding("cap_removed", key, f"取消了{zh}（原为 {before}）",
                    f"{en} ({before}) is removed")
            for key, zh, en, before, after in caps if before is not None and after is None]


def _days(promotion: Promotion) -> frozenset[int]:
    return frozenset(promotion.weekdays or range(7))


def _overlap(a: Promotion, b: Promotion, now: datetime, zone: ZoneInfo) -> bool:
    """Whether ``a`` and ``b`` both apply at some moment from ``now`` on: their windows meet
    after ``now`` on a weekday both run (in the programme's zone, as the engine reckons it)."""
    starts = max((t for t in (a.starts, b.starts) if t is not None), default=now)
    starts = max(starts, now)
    ends = min((t for t in (a.ends, b.ends) if t is not None), default=None)
    if ends is not None and ends <= starts:
        return False
    weekdays = _days(a) & _days(b)
    if ends is not None and ends - starts < timedelta(days=7):
        first, last = starts.astimezone(zone).date(), (ends - _TICK).astimezone(zone).date()
        covered = {(first + timedelta(days=n)).weekday() for n in range((last - first).days + 1)}
        weekdays &= covered
    return bool(weekdays)


def _promotions(old: Rules, new: Rules, now: datetime) -> list[Finding]:
    found: list[Finding] = []
    unchanged = set(old.earn.promotions)
    for promotion in new.earn.promotions:
        if promotion in unchanged:
            continue
        key = f"earn.promotion[{promotion.name}]"
        if promotion.ends is not None and promotion.ends <= now:
            found.append(Finding(
                "promotion_past", f"{key}.to",
                f"促销「{promotion.name}」已于 {promotion.ends.isoformat()} 结束，不会生效",
                f"promotion {promotion.name!r} ended at {promotion.ends.isoformat()}: it will "
                "never apply"))
        for other in new.earn.promotions:
            if other is not promotion and _overlap(promotion, other, now, new.zone):
                found.append(Finding(
                    "promotion_overlap", key,
                    f"促销「{promotion.name}」与「{other.name}」时间重叠（不叠加，取最高倍数）",
                    f"promotion {promotion.name!r} overlaps {other.name!r} (they do not stack: "
                    "the higher multiplier applies)"))
    return found
