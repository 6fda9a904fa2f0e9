"""A refusal of the points rules on a Chinese LCD says its facts in Chinese, with the numbers
the engine named; the English (the log, an English LCD) stays the engine's own words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.app.catalogue import refusal
from terminal.app.till_base import refused
from terminal.loyalty.errors import RedeemRefused, Refused
from terminal.loyalty.refunds import SoldLine, plan_refund_lines

from .conftest import TillBench

CASHIER = "1 enter 1234 enter"
LATIN = re.compile(r"[A-Za-z]")
# (what the cashier does first, the refused input, the Chinese LCD's words, the English's)
CASES: dict[str, tuple[list[str], str, str, str]] = {
    "below_minimum": (["s", "90 dept1", "subtotal"], "200 redeem",
                      "低于最少兑换积分：兑换 200 积分，最少 500 积分",
                      "200 points is below redeem.min_points (500)"),
    "off_step": (["s", "90 dept1", "subtotal"], "550 redeem",
                 "兑换积分须为整数倍：兑换 550 积分，须为 100 的整数倍",
                 "550 points is not a multiple of redeem.step_points (100)"),
    "over_half": (["s", "12 dept1", "subtotal"], "1000 redeem",
                  "超过本单可抵扣上限：1000 积分抵 10.00 元，"
                  "本单最多抵应付 12.00 元的 50%，即 6.00 元",
                  "1000 points (1000 fen) is more than redeem.max_percent_of_sale"),
    "nothing_redeemable": (["s", "b 6901234567892", "subtotal"], "redeem",
                           "现在不能兑换这么多积分：本单没有可兑换的积分（积分余额 1100）",
                           "no points may be redeemed on this sale (balance 1100)"),
    "over_the_balance": (["s", "redeem"], "1 enter", "积分不够：兑换 3000 积分，积分余额 1100",
                         "3000 points is more than the balance (1100)"),
}


@pytest.fixture
def zh_till(tmp_path: Path, examples: Path) -> Iterator[TillBench]:
    bench = TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": "zh"}})
    bench.do(CASHIER)
    yield bench
    bench.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_refused_redemption_is_said_in_chinese_on_a_chinese_lcd(zh_till: TillBench,
                                                                  name: str) -> None:
    before, bad, chinese, english = CASES[name]
    zh_till.do(*before)
    assert zh_till.till.refused is None, zh_till.till.refused
    zh_till.do(bad)
    assert zh_till.till.refused is not None and english in zh_till.till.refused  # the log's
    frame = zh_till.terminal.displays.frame
    assert frame is not None
    assert frame.prompt == chinese
    assert not LATIN.search(frame.prompt), frame.prompt  # no English left on the Chinese LCD


SOLD = [SoldLine(1, "6901234567892", 2, 700, refunded_qty=1)]


@pytest.mark.parametrize(("request_", "chinese", "english"), [
    ([("6901234567892", 2)], "退货数量超过可退数量：6901234567892 要退 2 件，销售单 S001-T01-0001 "
     "还可退 1 件", "6901234567892: 2 units asked, 1 left to refund on sale S001-T01-0001"),
    ([("42", 1)], "这件商品不在该销售单：商品 42，销售单 S001-T01-0001",
     "42 was not sold on sale S001-T01-0001"),
    (None, "这笔已全部退货：销售单 S001-T01-0001", "sale S001-T01-0001 is already fully refunded"),
])
def test_a_refused_refund_is_said_in_chinese(request_: list[tuple[str, object]] | None,
                                             chinese: str, english: str) -> None:
    sold = SOLD if request_ is not None else [SoldLine(1, "6901234567892", 1, 350, 1, 350)]
    with pytest.raises(Refused) as caught:
        plan_refund_lines("S001-T01-0001", sold, request_)
    assert refused(caught.value).long("zh") == chinese
    assert refused(caught.value).long("en") == english


def test_a_refusal_without_its_values_is_followed_by_the_engines_words() -> None:
    """An older engine's refusal, or a value its words need missing: the English as before."""
    bare = refusal("550 points is not a multiple of redeem.step_points (100)",
                   "redeem.step_points")
    assert bare.long("zh") == ("兑换积分须为整数倍：550 points is not a multiple of "
                               "redeem.step_points (100)")
    short = RedeemRefused("over", "redeem.min_points", points=1)  # no "least"
    assert refusal(str(short), short.rule, short.values).long("zh") == "低于最少兑换积分：over"
    assert refusal(str(short), short.rule, short.values).long("en") == "over"
