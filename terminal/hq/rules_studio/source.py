"""A rules TOML text: its mapping, and the line each key is written on.

The engine's errors name a key (``earn.promotion[1].multiplier``); people editing the file want
the line. :func:`key_lines` reads the text's table headers and ``key = value`` lines, which is
all ``rules.toml`` uses; a key not written out (missing) is placed on its table's header.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")
_KEY_PREFIX = re.compile(r"^([A-Za-z0-9_]+(?:\[\d+\])?(?:\.[A-Za-z0-9_]+(?:\[\d+\])?)*)")
_TOML_AT = re.compile(r"at line (\d+)(?:, column (\d+))?")


@dataclass(frozen=True)
class Problem:
    """One reason a rules text is refused: the key (when known), its line (1-based, 0 when
    unknown) and the engine's own message; ``code`` names the problem and ``values`` what it
    names, for saying it in another language (terminal.hq.console.rules_words)."""

    key: str
    line: int
    message: str
    code: str = ""
    values: dict[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}"

    def located(self) -> dict[str, Any]:
        """Where the problem is, its code and its values (each as text), as JSON: what
        ``POST /api/v1/rules/check`` and ``posterm-hq rules validate --json`` both say of it."""
        return {"key": self.key, "line": self.line, "code": self.code,
                "values": {name: str(value) for name, value in self.values.items()}}


class SourceError(ValueError):
    """The text is not TOML at all; ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_AT.search(str(exc))
        line = int(found.group(1)) if found else 0
        column = (found.group(2) or "") if found else ""
        raise SourceError(Problem("", line, f"not valid TOML: {exc}", "toml",
                                  {"column": column})) from None


def key_lines(text: str) -> dict[str, int]:
    """Every table and key written in ``text`` -> its 1-based line, arrays of tables indexed
    as the engine names them (``earn.promotion[0]``)."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).replace(" ", "")
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                # a nested array names its parent's latest element: earn.promotion -> earn
                lines.setdefault(name, number)
                name = f"{name}[{index}]"
            prefix = name
            lines[prefix] = number
            continue
        assign = _ASSIGN.match(line)
        if assign:
            key = f"{prefix}.{assign.group(1)}" if prefix else assign.group(1)
            lines.setdefault(key, number)
    return lines


def locate(message: str, lines: dict[str, int]) -> tuple[str, int]:
    """The key an engine message starts with, and the line of it or of its nearest table."""
    found = _KEY_PREFIX.match(message)
    if not found:
        return "", 0
    key = found.group(1)
    probe = key
    while probe:
        if probe in lines:
            return key, lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return key, 0


_STEP = re.compile(r"([A-Za-z0-9_]+)(?:\[([^\]]*)\])?")


def engine_key(key: str, mapping: dict[str, Any]) -> str:
    """A diff/lint key (``tiers.level[gold].earn_multiplier``, elements named by their name,
    category or sku) as the engine and :func:`key_lines` name it (``tiers.level[2]...``)."""
    parts: list[str] = []
    node: Any = mapping
    for step in re.findall(r"[^.\[]+(?:\[[^\]]*\])?", key):
        found = _STEP.fullmatch(step)
        if found is None:
            return key
        name, element = found.groups()
        node = node.get(name) if isinstance(node, dict) else None
        if element is None:
            parts.append(name)
            continue
        items = node if isinstance(node, list) else []
        index = next((i for i, item in enumerate(items) if isinstance(item, dict) and element in
                      (item.get("name"), item.get("category"), item.get("sku"))), None)
        if index is None:
            return key
        parts.append(f"{name}[{index}]")
        node = items[index]
    return ".".join(parts)
