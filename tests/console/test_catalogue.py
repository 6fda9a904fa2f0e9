"""Every text a template asks for is in both catalogues, and they hold the same keys."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable

from terminal.hq.console.i18n import LANGUAGES, Translator, catalogue
from terminal.hq.console.roles import ROLES
from terminal.loyalty.ledger import KINDS

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
