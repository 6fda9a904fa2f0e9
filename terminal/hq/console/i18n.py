"""The console's texts: one catalogue per language (``locales/*.json``), zh-CN first.

Templates call ``t("key")`` (or ``t("key", n=3)`` for a text with ``{n}`` in it); no text a
person reads is written in a template. A key missing from a catalogue is a test failure, and
shows as the key itself rather than breaking a page.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}


@cache
def catalogue(language: str) -> dict[str, str]:
    name = language.replace("-", "_") + ".json"
    text = resources.files("terminal.hq.console").joinpath("locales", name).read_text("utf-8")
    return json.loads(text)


def pick(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT


class Translator:
    def __init__(self, language: str) -> None:
        self.language = pick(language)
        self._texts = catalogue(self.language)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._texts.get(key, key)
        return text.format(**values) if values else text

    def tier(self, name: str) -> str:
        """A tier as the rules name it, in this language where the catalogue knows the name
        (``tier.silver``: 银卡会员); a chain's own tier name is shown as the rules write it."""
        return self._texts.get(f"tier.{name}", name)

    def reason(self, text: str) -> str:
        """An entry's reason: the store's own words for its bonuses (``registration``,
        ``referral:{member}``, terminal/loyalty/store) in this language; what a person wrote
        is shown as written."""
        kind, colon, member = text.partition(":")
        template = self._texts.get(f"reason.{kind}")
        if template is None or ("{member}" in template) != bool(colon) or (colon and not member):
            return text
        return template.format(member=member) if colon else template
