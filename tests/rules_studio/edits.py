"""Hand-made candidates: the chain's example rules with one line changed."""

from __future__ import annotations

from tests.support.shared import EXAMPLES

BASE = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")


def edited(*pairs: tuple[str, str]) -> str:
    """The example rules with each ``old`` text (which must occur exactly once) replaced."""
    text = BASE
    for old, new in pairs:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text
