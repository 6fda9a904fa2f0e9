"""The conventional tiers' names in each language: the one table the till
(terminal.app.tier_words: its LCD, pole and receipts) and the HQ console (its catalogues'
``tier.*``, terminal.hq.console.i18n) both say a tier by.

The rules name tiers by code (``member``, ``silver``, ``gold``, ``diamond`` in
shared/examples/rules.toml); a chain's own tier name, not in this table, is said as its rules
write it, in every language.
"""

from __future__ import annotations

from types import MappingProxyType

TIER_WORDS = MappingProxyType({
    "zh-CN": MappingProxyType({"member": "普通会员", "silver": "银卡会员", "gold": "金卡会员",
                               "diamond": "钻石会员"}),
    "en": MappingProxyType({"member": "Member", "silver": "Silver", "gold": "Gold",
                            "diamond": "Diamond"}),
})
