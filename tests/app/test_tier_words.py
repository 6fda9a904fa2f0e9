"""A tier on a Chinese LCD, pole and receipt is said in Chinese (the rules name it by code), in
the words of terminal.loyalty.tier_words, the one table the console says them by too."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.app.catalogue import said
from terminal.app.tier_words import TierName, tier_both, tier_said

from .conftest import TillBench


@pytest.mark.parametrize(("language", "prompt", "tier"), [
    ("zh", "王小明：1100 积分，普通会员", "普通会员"),
    ("en", "王小明: 1100 points, member", "member"),
])
def test_the_member_swiped_is_shown_with_the_tier_in_the_lcds_language(
        tmp_path: Path, examples: Path, language: str, prompt: str, tier: str) -> None:
    bench = TillBench(tmp_path, examples, {"lcd": {"backend": "dummy", "language": language}})
    try:
        bench.do("1 enter 1234 enter", "s")
        frame = bench.terminal.displays.frame
        assert frame is not None
        assert (frame.prompt, frame.tier) == (prompt, tier)
    finally:
        bench.close()


def test_a_chinese_pole_says_the_tier_in_chinese_and_an_english_one_by_its_name() -> None:
    shown = said("member.shown", name="王小明", points=1100, tier=TierName("gold"))
    assert shown.pole("zh", 20) == ("王小明", "积分 1100 金卡会员")
    assert shown.pole("en", 20) == ("Hi 王小明", "Points 1100 gold")


def test_a_chains_own_tier_is_said_as_its_rules_write_it() -> None:
    assert tier_said("铂金VIP", "zh") == tier_said("铂金VIP", "en") == "铂金VIP"
    assert tier_both("铂金VIP") == "铂金VIP"
    assert tier_both("diamond") == "钻石会员 diamond"


def test_the_conventional_tiers_are_said_in_chinese_on_a_chinese_till() -> None:
    """The till's words (terminal.loyalty.tier_words, which the console's catalogues take too:
    tests/console/test_catalogue.py)."""
    assert [tier_said(code, "zh") for code in ("member", "silver", "gold", "diamond")] == [
        "普通会员", "银卡会员", "金卡会员", "钻石会员"]
    assert [tier_both(code) for code in ("member", "gold")] == ["普通会员 member", "金卡会员 gold"]
