"""Degrade text cleanly for devices whose character set is small (ASCII pole displays, code-page
printers): full-width forms become ASCII, accents are dropped, typographic punctuation is
simplified, and what still cannot be shown (Chinese, say) becomes a placeholder, never mojibake.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from terminal.drivers.textwidth import char_width

_PUNCTUATION = str.maketrans(
    {"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "…": "...", "·": ".",
     "、": ",", "。": ".", "¥": "Y", "￥": "Y", "€": "EUR", "×": "x", "\u3000": " "}
)


def ascii_only(char: str) -> bool:
    return " " <= char <= "~"


def degrade(text: str, can_show: Callable[[str], bool] = ascii_only, placeholder: str = "*") -> str:
    """``text`` with every character ``can_show`` refuses replaced by its nearest showable form."""
    out: list[str] = []
    for char in text:
        if can_show(char):
            out.append(char)
            continue
        # NFKC turns full-width "１２．５０" into "12.50" and "ｍ" into "m"; typographic
        # punctuation becomes plain. Only for what the device cannot show: a Chinese display
        # keeps its full-width comma.
        simple = unicodedata.normalize("NFKC", char).translate(_PUNCTUATION)
        if simple and all(can_show(c) for c in simple):
            out.append(simple)
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        if base and all(can_show(c) for c in base):
            out.append(base)
        elif unicodedata.category(char).startswith(("C", "Z")):
            out.append(" " if char in "\t\n" or unicodedata.category(char) == "Zs" else "")
        else:
            # One placeholder per column keeps receipt columns and display layouts aligned.
            out.append(placeholder * char_width(char))
    return "".join(out)
