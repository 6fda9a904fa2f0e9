"""A tier as the till says it. The rules name tiers by code (``member``, ``silver``, ``gold``,
``diamond`` in shared/examples/rules.toml); a Chinese LCD, pole or receipt line says the
conventional tiers in Chinese, in the words of terminal.loyalty.tier_words, the table the HQ
console's catalogues take theirs from. A chain's own tier name is said as its rules write it,
in every language."""

from __future__ import annotations

from terminal.loyalty.tier_words import TIER_WORDS

TIERS_ZH = TIER_WORDS["zh-CN"]


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
