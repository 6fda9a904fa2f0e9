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

from terminal.hq.console.audit_words import detail_words, op_words, scope_words
from terminal.hq.console.rules_words import problem_words
from terminal.hq.shown_text import shown
from terminal.loyalty.tier_words import TIER_WORDS
from terminal.protocol.messages import PRINTER_CODES

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}
def printer_code(state: Any) -> tuple[str | None, int]:
    """A status's ``printer_state`` as HQ stored it: its code when it is one this console
    knows (None: none sent, or a code of a newer or broken till) and the receipts waiting."""
    if not isinstance(state, dict):
        return None, 0
    code, waiting = state.get("code"), state.get("waiting", 0)
    if isinstance(waiting, bool) or not isinstance(waiting, int) or waiting < 0:
        waiting = 0
    return (code if code in PRINTER_CODES else None), waiting


def printer_ok(state: Any, words: str) -> bool:
    """Whether the printer needs nobody: by its code, else (an older till) by its words."""
    code, waiting = printer_code(state)
    if code is None:
        return words in ("ok", "present")
    return code == "ok" and not waiting


@cache
def catalogue(language: str) -> dict[str, str]:
    """The language's texts: its locale file, and the tiers' names (``tier.*``) from the one
    table the tills say them by (terminal.loyalty.tier_words), which the file does not repeat."""
    name = language.replace("-", "_") + ".json"
    text = resources.files("terminal.hq.console").joinpath("locales", name).read_text("utf-8")
    texts: dict[str, str] = json.loads(text)
    repeated = sorted(key for key in texts if key.startswith("tier."))
    if repeated:  # a second copy would drift from the tills' words
        raise ValueError(f"locales/{name}: {', '.join(repeated)} come from "
                         "terminal.loyalty.tier_words, not from this file")
    texts.update({f"tier.{code}": words for code, words in TIER_WORDS[language].items()})
    return texts


def pick(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT


def accepted(header: str | None) -> str | None:
    """The console's language an ``Accept-Language`` header prefers (``en-GB,en;q=0.9``:
    en; ``zh-TW``: zh-CN, the console's only Chinese), None when it names none of them. Only
    the first 16 entries are read; a malformed weight counts as 0."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "")[:1000].split(",")[:16]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        language = {"zh": "zh-CN", "en": "en"}.get(primary)
        if language is not None and 0 < weight <= 1:
            choices.append((-weight, index, language))
    return min(choices)[2] if choices else None


class Translator:
    def __init__(self, language: str) -> None:
        self.language = pick(language)
        self._texts = catalogue(self.language)

    def __call__(self, key: str, **values: Any) -> str:
        text = self._texts.get(key, key)
        return text.format(**values) if values else text

    def known(self, key: str) -> str | None:
        """The catalogue's text for ``key``, None when it has none."""
        return self._texts.get(key)

    def detail(self, action: str, detail: str) -> str:
        """An audit row's details in this language (:mod:`terminal.hq.console.audit_words`);
        as stored, made safe, when no reader knows them."""
        return detail_words(self, action, detail)

    def op_detail(self, pairs: list[tuple[str, Any]]) -> str:
        """A member operation's detail on the member's page (``(field, value)`` pairs, as
        :meth:`terminal.hq.console.members.Reader.operations` gives them) as words."""
        return self("detail.sep").join(op_words(self, dict(pairs))) or "—"

    def scope(self, scope: str) -> str:
        """A rule bundle's scope (``chain``: 全连锁, ``store/S001``: 门店 S001)."""
        return scope_words(self, scope)

    def rejection(self, rejected: Any) -> str:
        """A till's latest refusal as the fleet lists it (``{"what": "bundle", "reason":
        "bad_signature", ...}``): what it refused and why, in this language; a code this
        console does not know as the till sent it, made safe."""
        if not isinstance(rejected, dict):
            return shown(rejected, 120)
        what, reason = str(rejected.get("what", "")), str(rejected.get("reason", ""))
        return self("fleet.rejection", what=self._texts.get(f"fleet.rejected.what.{what}")
                    or shown(what, 40), reason=self._texts.get(f"fleet.reason.{reason}")
                    or shown(reason, 40))

    def via(self, via: str) -> str:
        """How an audited action came (``web``, ``api``, ``cli``) in this language."""
        return self._texts.get(f"via.{via}") or shown(via, 20)

    def tier(self, name: str) -> str:
        """A tier as the rules name it, in this language where the catalogue knows the name
        (``tier.silver``: 银卡会员); a chain's own tier name is shown as the rules write it."""
        return self._texts.get(f"tier.{name}", name)

    def printer(self, state: Any, words: str) -> str:
        """The printer's state in this language from the till's code (``printer.paper_out``:
        缺纸), with the receipts waiting; the till's own words, made safe by :func:`shown`, for
        a till that sends no code or one this console does not know."""
        code, waiting = printer_code(state)
        if code is None:
            return shown(words or "?")
        if not waiting:
            return self(f"printer.{code}")
        kept = self("printer.waiting", n=waiting)
        return kept if code == "ok" else self("printer.with_waiting",
                                              state=self(f"printer.{code}"), waiting=kept)

    def action(self, code: str) -> str:
        """An audit record's action as a person reads it (``member.view``: 查看会员资料; a
        member operation by its form's name, ``member.adjust``: 调整积分, refused ones said so);
        an action this catalogue does not name is shown as its code."""
        name = self._texts.get(f"action.{code}")
        if name is not None:
            return name
        kind, _, rest = code.partition(".")
        operation, _, refused = rest.partition(".")
        if kind != "member" or refused not in ("", "refused"):
            return code
        name = self._texts.get(f"op.{operation}")
        if name is None or f"op.done.{operation}" not in self._texts:  # an operation's form
            return code
        return self("action.refused", what=name) if refused else name

    def refusal(self, code: str, field: str, words: str) -> str:
        """Why a member operation was refused, in this language: by the refusal's kind and the
        input at fault (``refusal.invalid.points``), else by its kind alone
        (``refusal.wrong_state``); the service's own words for a refusal no catalogue names."""
        return self._texts.get(f"refusal.{code}.{field}") or self._texts.get(
            f"refusal.{code}") or words

    def import_column(self, field: str) -> str:
        """A member import's column (``points``: 积分 (points)), the header, a row or the file."""
        return self._texts.get(f"import.col.{field}") or shown(field, 40)

    def import_problem(self, problem: Any) -> str:
        """A member import's problem (:class:`terminal.hq.member_ops.errors.ImportProblem`) in
        this language, from its column, code and values (each made safe: they are the file's);
        the service's words for a problem no catalogue names."""
        text = self._texts.get(f"import.err.{problem.field}.{problem.code}")
        if text is None:
            return shown(problem.message, None)
        try:
            return text.format(**{key: shown(value, 40) for key, value in problem.values.items()})
        except (KeyError, IndexError):
            return shown(problem.message, None)

    def care_error(self, exc: Any) -> str:
        """A refused campaign or consent change (``CampaignError``, ``ConsentError``) in this
        language by its kind and values (made safe); its own words for a kind no catalogue
        names."""
        text = self._texts.get(f"care.error.{getattr(exc, 'kind', '')}")
        if text is None:
            return shown(str(exc), None)
        try:
            return text.format(**{key: shown(value, 64)
                                  for key, value in getattr(exc, "values", {}).items()})
        except (KeyError, IndexError):
            return shown(str(exc), None)

    def rules_problem(self, problem: Any) -> str:
        """Why the rules studio refused a rules text: its line (第 3 行：) and the problem in
        this language (:mod:`terminal.hq.console.rules_words`), made safe."""
        where = self("rules.at_line", n=problem.line) if problem.line else ""
        return where + problem_words(self.language, problem)

    def device(self, name: str) -> str:
        """A device's name as a till's status names it (``printer``, ``keypad``: 打印机,
        键盘); a name only this chain's configuration uses is shown as written."""
        return self._texts.get(f"device.{name}", shown(name, 40))

    def reason(self, text: str) -> str:
        """An entry's reason: the store's own words for its bonuses (``registration``,
        ``referral:{member}``, terminal/loyalty/store) in this language; what a person wrote
        is shown as written."""
        kind, colon, member = text.partition(":")
        template = self._texts.get(f"reason.{kind}")
        if template is None or ("{member}" in template) != bool(colon) or (colon and not member):
            return text
        return template.format(member=member) if colon else template
