"""Display width of text on fixed-pitch devices: CJK characters take two columns.

Receipt printers, pole displays and terminals all lay text out in character cells; a Chinese
character fills two (East Asian Width "W"/"F"), a combining mark none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Cc", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, never splitting a double-width character."""
    used = 0
    for index, char in enumerate(text):
        used += char_width(char)
        if used > width:
            return text[:index]
    return text


def align(text: str, width: int, how: str = "left") -> str:
    """``text`` fitted and padded to exactly ``width`` columns; ``how`` is left, right or center."""
    text = fit(text, width)
    space = width - text_width(text)
    if how == "right":
        return " " * space + text
    if how == "center":
        return " " * (space // 2) + text + " " * (space - space // 2)
    if how == "left":
        return text + " " * space
    raise ValueError(f"alignment must be left, right or center, not {how!r}")


def wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of at most ``width`` columns (at spaces when it can)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        rest = paragraph
        while text_width(rest) > width:
            head = fit(rest, width)
            cut = head.rfind(" ")
            if cut > 0 and head.isascii():
                head = head[:cut]
            lines.append(head.rstrip())
            rest = rest[len(head):].lstrip(" ")
        lines.append(rest)
    return lines


def columns(cells: Sequence[str], widths: Sequence[int], aligns: str) -> str:
    """One line of cells, each fitted to its width, separated by one space."""
    if not len(cells) == len(widths) == len(aligns):
        raise ValueError(f"{len(cells)} cells, {len(widths)} widths and {len(aligns)} alignments")
    names = {"l": "left", "r": "right", "c": "center"}
    return " ".join(align(c, w, names[a]) for c, w, a in zip(cells, widths, aligns, strict=True))


def yuan(fen: int) -> str:
    """Integer fen as yuan for display: 1250 -> "12.50", -5 -> "-0.05"."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"money is integer fen, got {fen!r}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"
