"""Canonical JSON: the one byte form a signature covers.

Sorted keys, no whitespace, UTF-8 (no ``\\u`` escapes beyond what JSON requires), and only
null, booleans, integers, strings, lists and objects. Floats are refused because their text form
differs between writers and a signature over them would not survive a round trip; amounts are
integers (fen, points) and ratios travel as decimal strings. Datetimes must already be ISO strings.
"""

from __future__ import annotations

import json
from typing import Any


class CanonicalError(ValueError):
    """A value has no canonical JSON form, or bytes are not valid JSON for us."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise CanonicalError(f"{path or 'value'}: floats are not allowed ({value!r}); use an "
                             "integer or a decimal string")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{path or 'value'}: object key {key!r} is not a string")
            _check(item, f"{path}.{key}" if path else key)
        return
    raise CanonicalError(f"{path or 'value'}: {type(value).__name__} is not a JSON type")


def dumps(value: Any) -> bytes:
    """Return the canonical bytes of ``value``; raise CanonicalError naming the bad field."""
    _check(value, "")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
        return text.encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:  # lone surrogates, huge integers
        raise CanonicalError(f"value cannot be encoded: {exc}") from None


def _refuse_float(text: str) -> Any:
    raise CanonicalError(f"floats are not allowed ({text})")


def _refuse_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # built in C; a key given twice leaves fewer entries than pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise CanonicalError(f"duplicate key {key!r}")
            seen.add(key)
    return result


# What json.loads(text, **these) makes for every call (HQ's collector parses each event).
_DECODER = json.JSONDecoder(parse_float=_refuse_float, parse_constant=_refuse_constant,
                            object_pairs_hook=_no_duplicates)


def loads(raw: bytes | str) -> Any:
    """Parse strict JSON: no floats, NaN or duplicate keys. Any failure is CanonicalError."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        if text.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except CanonicalError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CanonicalError(f"not valid JSON: {exc}") from None


def is_canonical(raw: bytes) -> bool:
    """True when ``raw`` is exactly the canonical form of the value it encodes."""
    try:
        return dumps(loads(raw)) == raw
    except CanonicalError:
        return False
