"""A tier as the till says it. The rules name tiers by code (``member``, ``silver``, ``gold``,
``diamond`` in shared/examples/rules.toml); a Chinese LCD, pole or receipt line says the
conventional tiers in Chinese, the console's words (its locale's ``tier.*``; the test
tests/app/test_tier_words.py keeps the two the same). A chain's own tier name is said as its
rules write it, in every language."""

from __future__ import annotations

TIERS_ZH = {"member": "普通会员", "silver": "银卡会员", "gold": "金卡会员", "diamond": "钻石会员"}


class TierName(str):
    """A tier's name in the rules, as a message value: said in the message's language."""

    __slots__ = ()


def tier_zh(name: str) -> str:
    return TIERS_ZH.get(name, name)


def tier_said(name: str, language: str) -> str:
    return tier_zh(name) if language == "zh" else name


def tier_both(name: str) -> str:
    """For a bilingual receipt: the Chinese word and the rules' name (``银卡会员 silver``), or
    the chain's own name once."""
    zh = tier_zh(name)
    return name if zh == name else f"{zh} {name}"
