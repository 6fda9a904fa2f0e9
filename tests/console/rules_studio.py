"""The console with its rules studio: the chain's rules in force as written (the example's)."""

from __future__ import annotations

from starlette.types import ASGIApp

from terminal.hq.console.app import build, rules_studio
from terminal.hq.console.rules_pages import Studio
from tests.console.chain import Chain
from tests.support.shared import EXAMPLES
from tests.sync.harness import CARD_KEY

IN_FORCE_TEXT = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")


def studio_app(chain: Chain, studio: Studio, *, secure_cookies: bool = True) -> ASGIApp:
    return build(chain.url, chain.rules, CARD_KEY, secure_cookies=secure_cookies, studio=studio)


def studio_of(chain: Chain) -> Studio:
    return rules_studio(chain.url, IN_FORCE_TEXT)
