"""Validate a rules text with the engine's own parser (:mod:`terminal.loyalty.rules`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from terminal.hq.rules_studio.source import Problem, SourceError, key_lines, locate, parse
from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import Rules


@dataclass(frozen=True)
class Validation:
    rules: Rules | None
    mapping: dict[str, Any] | None
    problems: tuple[Problem, ...] = field(default=())
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rules is not None


def validate(text: str) -> Validation:
    """The engine stops at its first error, so a refused text has exactly one problem."""
    try:
        mapping = parse(text)
    except SourceError as exc:
        return Validation(None, None, (exc.problem,))
    lines = key_lines(text)
    try:
        rules = Rules.from_mapping(mapping)
    except RulesError as exc:
        key, line = locate(str(exc), lines)
        return Validation(None, mapping, (Problem(key, line, str(exc), exc.code, exc.values),),
                          lines)
    return Validation(rules, mapping, (), lines)
