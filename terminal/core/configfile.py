"""Strict, typed configuration sections: frozen dataclasses built from TOML tables.

A section is a frozen dataclass whose fields are declared with :func:`setting`, which records the
documentation and the bounds next to the default (Klipper's ``getint(minval=, maxval=)``,
OctoPrint's documented schema). :func:`load_section` refuses unknown or misspelt keys, wrong
types and values out of range with a :class:`ConfigError` naming the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def setting(
    default: Any = _MISSING,
    *,
    doc: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """Declare one documented, bounded field of a config section."""
    metadata = {"doc": doc, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a default_factory-free immutable default")
    return dataclasses.field(default=default, metadata=metadata)


def load_section(cls: type[T], mapping: Mapping[str, Any], where: str) -> T:
    """Build the frozen dataclass ``cls`` from ``mapping``; ``where`` names file and section."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(mapping).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in mapping:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; known keys: {known}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name in mapping:
            values[name] = _check(mapping[name], hints[name], field, f"{where} {name}")
        elif field.default is _MISSING:
            raise ConfigError(f"{where}: missing required key {name!r} ({_doc(field)})")
    return cls(**values)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a ConfigError that names the file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def section_from(data: Mapping[str, Any], dotted: str, cls: type[T], source: str) -> T:
    """Build ``cls`` from the table ``dotted`` (``"input.reader"``); an absent table -> defaults."""
    table: Any = data
    for part in dotted.split("."):
        table = table.get(part, {}) if isinstance(table, Mapping) else None
    return load_section(cls, table, f"{source} [{dotted}]")


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(key, type, default, doc) for each field, for documentation and ``doctor`` output."""
    hints = typing.get_type_hints(cls)
    rows = []
    for field in dataclasses.fields(cls):
        default = None if field.default is _MISSING else field.default
        rows.append((field.name, _type_name(hints[field.name]), default, _doc(field)))
    return rows


def _doc(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get("doc", "undocumented"))


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _check(value: Any, hint: Any, field: dataclasses.Field[Any], where: str) -> Any:
    value = _coerce(value, hint, where)
    meta = field.metadata
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{where}: {value!r} is not one of {allowed}")
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and value < low:
            raise ConfigError(f"{where}: {value} is below the minimum {low}")
        if high is not None and value > high:
            raise ConfigError(f"{where}: {value} is above the maximum {high}")
    return value


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: {value!r} has the wrong type")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(hint)}")
        return value
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(item, item_type, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return types.MappingProxyType(
            {_coerce(k, key_type, where): _coerce(v, value_type, f"{where}.{k}")
             for k, v in value.items()}
        )
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint in (str, bool):
        if type(value) is hint:
            return value
        raise ConfigError(f"{where}: expected {'true/false' if hint is bool else 'a string'}, "
                          f"got {value!r}")
    raise TypeError(f"{where}: unsupported config type {hint!r}")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """Tables of strings, numbers, booleans and lists of them, as TOML (JSON's string and list
    forms are TOML's): how posterm writes the configs it makes (the local chain's till, tests)."""
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in plain.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for key, value in data.items():
        if isinstance(value, dict):
            text += to_toml(value, f"{prefix}.{key}" if prefix else key)
    return text
