"""The receipt says how the points were earned in plain words, and its numbers add up exactly to
the points the engine credited."""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from terminal.app.receipts import explain_points, number
from terminal.drivers.document import Document, render_text
from terminal.loyalty.clock import Moment
from terminal.loyalty.earning import compute_earning
from terminal.loyalty.money import round_points
from terminal.loyalty.pricing import Line, price
from terminal.loyalty.rules import Rules, load_rules

from .conftest import check_golden

SH = ZoneInfo("Asia/Shanghai")
LINES = [
    Line("6900000000011", 1, 1250, name="草莓 Strawberries", category="fresh"),
    Line("6901234567892", 2, 350, name="可口可乐 Coca-Cola", category="drinks"),
    Line("6900000000099", 1, 3000, name="香烟 Cigarettes", category="tobacco"),
    Line("6900000000028", 3, 999, name="洗衣液 Detergent", category="household"),
]


@pytest.fixture
def rules(examples: Path) -> Rules:
    return load_rules(examples / "rules.toml")


def explained(rules: Rules, when: datetime, tier: str = "silver",
              birthday: date | None = None, today: int = 0) -> tuple[int, str]:
    level = rules.tier(tier)
    pricing = price(LINES, level.discount_percent, 0)
    earning = compute_earning(rules, pricing, level, Moment(when, True, None), birthday, today)
    assert earning.steps is not None
    doc = Document()
    explain_points(doc, earning.steps)
    return earning.points, render_text(doc, 32)


def test_the_words_name_every_step_and_add_up(rules: Rules) -> None:
    # A Wednesday inside National Day, on the member's birthday, a silver member.
    points, text = explained(rules, datetime(2026, 10, 7, 10, tzinfo=SH),
                             birthday=date(1990, 10, 7))
    check_golden("points_explained.txt", text)
    assert points == 462
    for words in ("积分计算 How the points add up", "香烟 不积分 no points",
                  "会员等级 Tier 银卡会员",
                  "促销 Promotion: National Day double points", "生日 Birthday",
                  "积分合计 Points          362.064", "舍去小数 Rounded down        362",
                  "指定商品奖励 Bonus items    +100"):
        assert words in text.replace("ou\nble", "ouble"), words
    assert "Wednesday member day" not in text  # promotions do not stack: the highest is named


def test_the_explanation_is_the_engine_s_own_numbers(rules: Rules) -> None:
    level = rules.tier("gold")
    pricing = price(LINES, level.discount_percent, 0)
    earning = compute_earning(rules, pricing, level, Moment(
        datetime(2026, 3, 11, 10, tzinfo=SH), True, None), None, 0)
    steps = earning.steps
    assert steps is not None
    total = sum((line.points for line in steps.lines), Fraction(0))
    for _kind, _name, times in steps.multipliers:
        total *= times
    assert total == steps.total
    assert round_points(total, steps.rounding) + steps.fixed == earning.points
    for line in steps.lines:
        if not line.excluded:
            assert line.points == Fraction(line.amount_fen, 100) * steps.points_per_yuan \
                * line.multiplier


def test_a_cap_is_said(rules: Rules) -> None:
    points, text = explained(rules, datetime(2026, 3, 12, 10, tzinfo=SH), today=10**9)
    assert points == 0 and "每日上限 Daily cap" in text


def test_numbers_read_plainly() -> None:
    assert [number(Fraction(215, 100)), number(Fraction(3)), number(Fraction(1, 3))] == \
        ["2.15", "3", "~0.333"]
    assert number(Fraction(362064, 1000)) == "362.064" and number(Fraction(1, 8)) == "0.125"


def test_the_member_sale_receipt_as_printed(tmp_path: Path, examples: Path) -> None:
    """The whole receipt a member takes home, drawn from the bytes the printer was sent."""
    from terminal.drivers.escpos_paper import preview
    from tests.drivers.golden_util import check_image

    from .conftest import TillBench

    bench = TillBench(tmp_path, examples)
    try:
        bench.do("1 enter 1234 enter", "s", "b 6900000000014", "2 quantity", "40 dept2",
                 "subtotal", "500 redeem", "100 cash")
        captured = bench.terminal.desk.printer.captured
        paper = preview(captured[captured.rindex(b"\x1b@"):], 384)
        assert [(c.kind, c.data) for c in paper.codes] == [("CODE128", "S001-T01-0001")]
        assert "积分计算 How the points add up" in paper.lines
        check_image("member_sale_receipt_58mm.png", paper.image())
    finally:
        bench.close()
