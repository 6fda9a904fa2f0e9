"""A till's (or anyone outside HQ's) own words made safe to show as text: on a console page and
in ``posterm-hq fleet``'s table, where an escape sequence would reach a technician's terminal."""

from __future__ import annotations

import unicodedata

SHOWN_LIMIT = 120  # characters of a till's own words a page shows (the rest: "…")
# Unicode categories shown as escapes: controls, format characters (bidi overrides, zero-width
# joiners), surrogates, private use, unassigned, line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def shown(text: object, limit: int | None = SHOWN_LIMIT) -> str:
    """What a till (or anyone outside HQ) wrote, made safe to show as text: each control or
    invisible character as an escape (``\\x1b``, ``\\u202e``), the rest (Chinese too) as it
    is; at most ``limit`` characters, then "…" (None: all). A page's template still escapes
    HTML."""
    text = str(text)
    out = "".join(_escape(ch) if unicodedata.category(ch) in _HIDDEN else ch
                  for ch in text[:limit])
    return out + "…" if limit is not None and len(text) > limit else out


def _escape(ch: str) -> str:
    point = ord(ch)
    return (f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}" if point < 0x10000
            else f"\\U{point:08x}")
