"""A readable diff of two rules mappings, per scope (the chain, each store).

Keys are flattened to paths; an array of tables is indexed by what names its elements (``name``,
``category`` or ``sku``), so moving a promotion up the file is no change and editing it reads
``earn.promotion[Wednesday member day].multiplier: 1.5 -> 3.0``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

IDENTITY_KEYS = ("name", "category", "sku")
_ABSENT = object()


@dataclass(frozen=True)
class Change:
    key: str
    before: Any  # _ABSENT when added
    after: Any  # _ABSENT when removed

    @property
    def sign(self) -> str:
        if self.before is _ABSENT:
            return "+"
        return "-" if self.after is _ABSENT else "~"

    def text(self) -> str:
        if self.sign == "+":
            return f"+ {self.key} = {show(self.after)}"
        if self.sign == "-":
            return f"- {self.key} (was {show(self.before)})"
        return f"~ {self.key}: {show(self.before)} -> {show(self.after)}"

    def as_json(self) -> dict[str, Any]:
        return {"change": {"+": "added", "-": "removed", "~": "changed"}[self.sign],
                "key": self.key,
                "before": None if self.before is _ABSENT else show(self.before),
                "after": None if self.after is _ABSENT else show(self.after)}


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return str(value)


def _element_name(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in IDENTITY_KEYS:
            if isinstance(item.get(key), str):
                return item[key]
    return str(index)


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(mapping, list) and mapping and all(isinstance(i, dict) for i in mapping):
        for index, item in enumerate(mapping):
            flat.update(flatten(item, f"{prefix}[{_element_name(item, index)}]"))
    else:
        flat[prefix] = mapping
    return flat


def diff(in_force: dict[str, Any], candidate: dict[str, Any]) -> list[Change]:
    """Every changed key, in the candidate's order, then the removed ones in the old order."""
    old, new = flatten(in_force), flatten(candidate)
    changes = [Change(key, old.get(key, _ABSENT), value) for key, value in new.items()
               if key not in old or old[key] != value]
    changes += [Change(key, value, _ABSENT) for key, value in old.items() if key not in new]
    return changes


def render(scopes: dict[str, list[Change]]) -> str:
    """The diff of each scope under its name; a scope without changes says so."""
    out: list[str] = []
    for scope, changes in scopes.items():
        out.append(f"== {scope}: {len(changes)} change(s)" if changes else
                   f"== {scope}: no change")
        out += [f"  {change.text()}" for change in changes]
    return "\n".join(out)
