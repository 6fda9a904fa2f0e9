"""Why the rules studio refused a rules text, in the console's language.

The engine's parser (terminal.loyalty.rules) says its problem in English, for the command line
(``posterm-hq rules validate``) and English pages, and names it by a code with its values (the
key, what was written there, the bounds): a Chinese page and a zh-CN API answer word it from
those by :data:`ZH`. What the author wrote (``got``, a zone, a key) is made safe by ``shown``;
a code not worded here is shown as the engine's English, made safe too.
"""

from __future__ import annotations

from typing import Any

from terminal.hq.shown_text import shown

VALUE_LIMIT = 64  # characters of what the author wrote a message shows (the rest: "…")

ZH = {
    "table": "{key}：应为一个表",
    "missing": "{key}：缺少此项",
    "whole": "{key}：应为整数，这里是 {got}",
    "range": "{key}：{value} 不在 {lo} 到 {hi} 之间",
    "text": "{key}：应为文字，这里是 {got}",
    "choice": "{key}：{value} 不是可选的值（{choices}）",
    "bool": "{key}：应为 true 或 false，这里是 {got}",
    "number": "{key}：应为数字，这里是 {got}",
    "iso_time": "{key}：{got} 不是 ISO 8601 时间",
    "datetime": "{key}：应为日期和时间，这里是 {got}",
    "zoneless": "{key}：时间 {time} 没有写时区",
    "list": "{key}：应为列表，这里是 {got}",
    "zone": "{key}：没有 {zone} 这个时区",
    "ends_first": "{key}：结束时间不晚于开始时间",
    "category_names": "{key}：应为品类名称的列表",
    "no_tiers": "{key}：至少需要一个等级",
    "lowest_tier": "{key}：最低的等级须在消费 0 分时即可达到",
    "tier_names": "{key}：等级名称不能重复",
    "step_fen": ("{key}（{step}）按 redeem.points_per_yuan（{per_yuan}）折算不是整分："
                 "step_points × 100 须为 points_per_yuan 的整数倍"),
    "no_tier_named": "{key}：没有名为 {name} 的等级",
    "toml": "不是有效的 TOML 文本",
    "toml_at": "不是有效的 TOML 文本（第 {column} 列附近）",
}


def problem_words(language: str, problem: Any) -> str:
    """A refused rules text's problem (``terminal.hq.rules_studio.source.Problem``) in
    ``language``: the engine's English for English, else :data:`ZH`'s words from its code and
    values; either made safe to show."""
    code = getattr(problem, "code", "")
    values = dict(getattr(problem, "values", {}))
    if code == "toml" and values.get("column"):
        code = "toml_at"
    template = ZH.get(code) if language == "zh-CN" else None
    if template is None:
        return shown(problem.message, None)
    try:
        return template.format(**{name: shown(value, VALUE_LIMIT)
                                  for name, value in values.items()})
    except (KeyError, IndexError):  # a value the words need was not given
        return shown(problem.message, None)
