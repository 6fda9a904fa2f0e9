"""What the customer's pole display can show: its language and how it shows names.

A pole that takes GB2312 or GB18030 (``[pole] charset``) shows Chinese: a Chinese character is
two columns, 10 a line on a 20-column pole; a bilingual name its Chinese words. An ASCII pole
shows English, and names in pinyin: "牛奶" becomes "NiuNai", and a bilingual name ("草莓
Strawberries") its Latin words.

Pinyin comes from anyascii, imported on the first Chinese name an ASCII pole must show, never at
start-up (READY and its resident memory are unchanged). Measured here: the first name 3.6 ms and
no measurable resident memory in the daemon's process (anyascii loads one small table per Unicode
block), later names 0.2 ms; 7 names in a fresh interpreter 33 ms, +2.5 MB peak. pypinyin with its
phrase dictionary took 55 MB and 0.5 s (12 MB and 0.24 s without phrases, reading characters
alone as anyascii does), which the daemon's 60 MB budget cannot hold. Reading each character
alone, a character with several readings may read oddly (银行 "YinXing"); names with Latin
words avoid it.
"""

from __future__ import annotations

import re

from terminal.app.catalogue import Language
from terminal.drivers.transliterate import ascii_only

_WORD = re.compile(r"\S+")


def pole_language(charset: str) -> Language:
    return "en" if charset == "ascii" else "zh"


def latin_name(name: str) -> str:
    """A bilingual name's Latin words ("草莓 Strawberries" -> "Strawberries"), else the name."""
    words = _WORD.findall(name)
    latin = [w for w in words if all(ascii_only(c) for c in w)]
    return " ".join(latin) if latin and len(latin) < len(words) else name


def chinese_name(name: str) -> str:
    """A bilingual name's Chinese words ("草莓 Strawberries" -> "草莓"), else the name."""
    words = _WORD.findall(name)
    local = [w for w in words if not all(ascii_only(c) for c in w)]
    return " ".join(local) if local and len(local) < len(words) else name


def pinyin(text: str) -> str:
    """``text`` with every Chinese character as its pinyin (ASCII), the rest as it is."""
    if text.isascii():
        return text
    from anyascii import anyascii

    return anyascii(text)


def name_for(language: Language):  # -> Callable[[str], str]
    """How a pole of ``language`` shows a name."""
    if language == "zh":
        return chinese_name
    return lambda name: pinyin(latin_name(name))
