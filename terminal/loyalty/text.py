"""Text both ledgers store alike: no control characters (NUL above all: PostgreSQL refuses it
where SQLite keeps it, and the terminal's and HQ's ledgers would diverge) and no lone surrogates
(text with no UTF-8 form at all)."""

from __future__ import annotations

import unicodedata


def text_problem(value: str) -> str | None:
    """What makes ``value`` unfit to store, or None: the first control character or lone
    surrogate, named by its code point."""
    for char in value:
        kind = unicodedata.category(char)
        if kind == "Cs":
            return f"is not valid text (a lone surrogate, U+{ord(char):04X})"
        if kind == "Cc":
            return f"holds a control character (U+{ord(char):04X})"
    return None
