"""Keyboard layouts: which character an evdev key code types, plain, shifted and with AltGr.

Card readers and scanners that act as keyboards type through the host's layout, so a reader set up
for a German PC sends QWERTZ key codes. The layout is chosen in config, never guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from evdev import ecodes


@dataclass(frozen=True)
class Layout:
    """One keyboard layout: key code -> (plain, shifted, altgr) characters ("" = types nothing)."""

    name: str
    keys: Mapping[int, tuple[str, str, str]]

    def char(self, code: int, *, shift: bool, caps: bool, altgr: bool) -> str:
        entry = self.keys.get(code)
        if entry is None:
            return ""
        plain, shifted, alt = entry
        if altgr:
            return alt
        # Caps lock shifts letters only; shift with caps lock gives lower case again.
        if caps and plain.isalpha() and len(plain) == 1:
            shift = not shift
        return shifted if shift else plain

    def key_for(self, char: str) -> tuple[int, bool, bool] | None:
        """(code, needs_shift, needs_altgr) that types ``char``, for synthesising events."""
        return _reverse(self.name).get(char)


@functools.cache
def _reverse(name: str) -> dict[str, tuple[int, bool, bool]]:
    table: dict[str, tuple[int, bool, bool]] = {}
    for code, (plain, shifted, alt) in sorted(LAYOUTS[name].keys.items()):
        # Prefer the plain key, then shift, then AltGr, as a person would type it.
        for char, shift, altgr in ((plain, False, False), (shifted, True, False),
                                   (alt, False, True)):
            if char and char not in table:
                table[char] = (code, shift, altgr)
    return table


def _row(codes: str, plain: str, shifted: str) -> dict[int, tuple[str, str, str]]:
    names = codes.split()
    assert len(names) == len(plain) == len(shifted), codes
    return {ecodes.ecodes[f"KEY_{n}"]: (p, s, "") for n, p, s in zip(names, plain, shifted,
                                                                     strict=True)}


_COMMON = {
    ecodes.KEY_SPACE: (" ", " ", ""),
    ecodes.KEY_ENTER: ("\n", "\n", ""),
    ecodes.KEY_TAB: ("\t", "\t", ""),
}

US = Layout(
    "us",
    {
        **_COMMON,
        **_row("GRAVE 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL", "`1234567890-=", "~!@#$%^&*()_+"),
        **_row("Q W E R T Y U I O P LEFTBRACE RIGHTBRACE BACKSLASH",
               "qwertyuiop[]\\", "QWERTYUIOP{}|"),
        **_row("A S D F G H J K L SEMICOLON APOSTROPHE", "asdfghjkl;'", 'ASDFGHJKL:"'),
        **_row("Z X C V B N M COMMA DOT SLASH", "zxcvbnm,./", "ZXCVBNM<>?"),
    },
)

# evdev names keys by their US position: on QWERTZ the key called KEY_Y types "z".
_DE_KEYS = {
        **_COMMON,
        **_row("GRAVE 1 2 3 4 5 6 7 8 9 0 MINUS EQUAL", "^1234567890ß´", "°!\"§$%&/()=?`"),
        **_row("Q W E R T Y U I O P LEFTBRACE RIGHTBRACE BACKSLASH",
               "qwertzuiopü+#", "QWERTZUIOPÜ*'"),
        **_row("A S D F G H J K L SEMICOLON APOSTROPHE", "asdfghjklöä", "ASDFGHJKLÖÄ"),
        **_row("Z X C V B N M COMMA DOT SLASH 102ND", "yxcvbnm,.-<", "YXCVBNM;:_>"),
}
# AltGr characters on a German keyboard that card tracks and URLs need.
_DE_KEYS.update(
    {
        ecodes.KEY_Q: ("q", "Q", "@"),
        ecodes.KEY_7: ("7", "/", "{"),
        ecodes.KEY_8: ("8", "(", "["),
        ecodes.KEY_9: ("9", ")", "]"),
        ecodes.KEY_0: ("0", "=", "}"),
        ecodes.KEY_MINUS: ("ß", "?", "\\"),
        ecodes.KEY_RIGHTBRACE: ("+", "*", "~"),
        ecodes.KEY_102ND: ("<", ">", "|"),
        ecodes.KEY_E: ("e", "E", "€"),
    }
)
DE = Layout("de", _DE_KEYS)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (US, DE)}

# Number-pad keys type digits only while num lock is on; otherwise they are cursor keys.
KEYPAD_CHARS: dict[int, str] = {
    ecodes.KEY_KP0: "0", ecodes.KEY_KP1: "1", ecodes.KEY_KP2: "2", ecodes.KEY_KP3: "3",
    ecodes.KEY_KP4: "4", ecodes.KEY_KP5: "5", ecodes.KEY_KP6: "6", ecodes.KEY_KP7: "7",
    ecodes.KEY_KP8: "8", ecodes.KEY_KP9: "9", ecodes.KEY_KPDOT: ".",
}
# These keypad keys type the same whatever num lock says.
KEYPAD_FIXED: dict[int, str] = {
    ecodes.KEY_KPENTER: "\n", ecodes.KEY_KPPLUS: "+", ecodes.KEY_KPMINUS: "-",
    ecodes.KEY_KPASTERISK: "*", ecodes.KEY_KPSLASH: "/",
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown keyboard layout {name!r}; known: {', '.join(LAYOUTS)}") from None
