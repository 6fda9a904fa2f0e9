"""Every text a template asks for is in both catalogues, and they hold the same keys."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest

from terminal.hq.console.i18n import LANGUAGES, Translator, catalogue
from terminal.hq.console.roles import ROLES
from terminal.loyalty.ledger import KINDS
from terminal.loyalty.rules import load_rules
from terminal.loyalty.tier_words import TIER_WORDS
from tests.support.shared import EXAMPLES

TEMPLATES = resources.files("terminal.hq.console").joinpath("templates")


def template_keys() -> set[str]:
    keys: set[str] = set()
    for path in _walk(TEMPLATES):
        # Whole keys only: t("kind." + e.kind) is checked below through the kinds it can take.
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+[a-z_])["']\s*[,)]""",
                               path.read_text("utf-8")))
    return keys


def _walk(folder: Traversable) -> Iterator[Traversable]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _walk(item)
        elif item.name.endswith(".html"):
            yield item


def test_both_catalogues_have_every_key_the_templates_use() -> None:
    used = template_keys() | {f"role.{role}" for role in ROLES} | {
        f"kind.{kind}" for kind in KINDS}
    assert len(used) > 40
    for language in LANGUAGES:
        assert used - set(catalogue(language)) == set(), language
    assert set(catalogue("zh-CN")) == set(catalogue("en"))


def test_chinese_is_the_default_and_values_fill_in() -> None:
    assert Translator("fr").language == "zh-CN"
    assert Translator("en")("members.none_found", q="张") == "No member matches “张”."
    assert Translator("zh-CN")("member.debt", n=5) == "欠 5 积分"


def test_tiers_and_the_stores_own_reasons_are_shown_in_the_language() -> None:
    zh, en = Translator("zh-CN"), Translator("en")
    # The example rules' tiers (../shared/examples/rules.toml); a chain's own name as written.
    assert [zh.tier(name) for name in ("member", "silver", "gold", "diamond")] == [
        "普通会员", "银卡会员", "金卡会员", "钻石会员"]
    assert en.tier("gold") == "Gold"
    assert zh.tier("黑金") == "黑金" and en.tier("platinum") == "platinum"
    # The reasons terminal/loyalty/store writes for its bonuses.
    assert zh.reason("registration") == "注册奖励"
    assert en.reason("referral:01a2") == "Referral bonus (new member 01a2)"
    assert zh.reason("referral:{0}") == "推荐奖励（新会员 {0}）"  # a value, not a template
    # What a person wrote, and what only looks like a bonus's reason, is shown as written.
    for written in ("店长调整", "registration:x", "referral", "referral:", "overdraft: 300",
                    "kind.bonus", ""):
        assert zh.reason(written) == written and en.reason(written) == written


def test_every_tier_of_the_example_rules_has_a_name_in_both_languages() -> None:
    tiers = {f"tier.{level.name}" for level in load_rules(EXAMPLES / "rules.toml").tiers}
    for language in LANGUAGES:
        assert tiers - set(catalogue(language)) == set(), language


def test_the_tiers_names_come_from_the_one_table_the_tills_say_them_by() -> None:
    """terminal.loyalty.tier_words: the locale files repeat none of it (a copy would drift from
    the tills' words), and a file that does is refused when it is read."""
    for language in LANGUAGES:
        name = language.replace("-", "_") + ".json"
        text = resources.files("terminal.hq.console").joinpath("locales", name).read_text("utf-8")
        assert [key for key in json.loads(text) if key.startswith("tier.")] == [], name
        words = {key.removeprefix("tier."): said for key, said in catalogue(language).items()
                 if key.startswith("tier.")}
        assert words == dict(TIER_WORDS[language]), language
        assert Translator(language).tier("silver") == TIER_WORDS[language]["silver"]


def test_a_locale_file_repeating_a_tiers_name_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from terminal.hq.console import i18n

    (tmp_path / "locales").mkdir()
    (tmp_path / "locales" / "en.json").write_text('{"tier.gold": "Golden"}', encoding="utf-8")
    monkeypatch.setattr(i18n.resources, "files", lambda package: tmp_path)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"tier\.gold come from terminal\.loyalty\.tier_words"):
            i18n.catalogue("en")
    finally:
        monkeypatch.undo()
        i18n.catalogue.cache_clear()


def test_a_printers_code_and_an_audit_action_are_named_and_the_rest_shown_safely() -> None:
    from terminal.hq.shown_text import shown

    zh, en = Translator("zh-CN"), Translator("en")
    assert zh.printer({"code": "paper_out", "waiting": 0}, "ok") == "缺纸"
    assert zh.printer({"code": "ok", "waiting": 3}, "3 receipts waiting") == "3 张小票待补打"
    assert en.printer({"code": "paper_low"}, "ok") == "Paper low"
    # An older till (no code), a code no catalogue knows, a broken count: the till's words.
    assert zh.printer(None, "1 receipts waiting") == "1 receipts waiting"
    assert zh.printer({"code": "__class__"}, "jam\x07") == "jam\\x07"
    assert zh.printer({"code": "ok", "waiting": "many"}, "ok") == "正常"
    assert shown("a\u202eb\u3000c" + "x" * 200, 10) == "a\\u202eb\u3000cxxxxx…"
    assert zh.action("member.freeze.refused") == "冻结（被拒绝）"
    assert en.action("login") == "Signed in"
    for code in ("member.points", "member.freeze.x", "tea.time", ""):
        assert zh.action(code) == code
    assert zh.device("keypad") == "键盘" and zh.device("drawer2") == "drawer2"
    # A member operation's refusal by its kind and input, else its kind, else the service's words.
    assert zh.refusal("invalid", "points", "x") == "积分应为不为 0 的整数（可为负数）。"
    assert en.refusal("wrong_state", "card", "x").startswith("The card's state")
    assert zh.refusal("invalid", "csv", "line 2: bad") == "line 2: bad"
