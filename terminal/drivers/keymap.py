"""Keypad keys -> named actions. The cashier app reacts to action names, never to key codes.

The default suits a common POS numeric keypad (a number block plus F1-F12 or programmable keys
that send F-keys). A store re-labels keys with ``[keypad.keymap]`` overrides in posterm.toml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from evdev import InputEvent, ecodes

from terminal.core.configfile import ConfigError

_DIGITS = {f"KEY_{prefix}{d}": f"digit_{d}" for prefix in ("KP", "") for d in range(10)}

DEFAULT_KEYMAP: Mapping[str, str] = MappingProxyType(
    {
        **_DIGITS,
        "KEY_KPDOT": "decimal_point",
        "KEY_DOT": "decimal_point",
        "KEY_KPENTER": "enter",
        "KEY_ENTER": "enter",
        "KEY_BACKSPACE": "backspace",
        "KEY_ESC": "clear",
        "KEY_KPPLUS": "add",
        "KEY_KPMINUS": "discount",
        "KEY_KPASTERISK": "quantity",
        "KEY_KPSLASH": "price_check",
        "KEY_F1": "member",
        "KEY_F2": "subtotal",
        "KEY_F3": "cash",
        "KEY_F4": "card",
        "KEY_F5": "redeem",
        "KEY_F6": "void",
        "KEY_F7": "refund",
        "KEY_F8": "reprint",
        "KEY_F9": "sign_in_out",
        "KEY_F10": "balance",
        "KEY_F11": "department_1",
        "KEY_F12": "department_2",
    }
)

_ACTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def load_keymap(
    overrides: Mapping[str, str] | None = None, where: str = "posterm.toml [keypad.keymap]"
) -> Mapping[str, str]:
    """The default keymap with ``overrides`` applied; an empty action string unmaps a key."""
    keymap = dict(DEFAULT_KEYMAP)
    for key, action in (overrides or {}).items():
        if not isinstance(key, str) or key not in ecodes.ecodes or not key.startswith(
            ("KEY_", "BTN_")
        ):
            raise ConfigError(f"{where}: {key!r} is not an evdev key name (e.g. KEY_F1, KEY_KP5)")
        if not isinstance(action, str):
            raise ConfigError(f"{where} {key}: the action must be a string, got {action!r}")
        if action == "":
            keymap.pop(key, None)
        elif _ACTION_NAME.fullmatch(action):
            keymap[key] = action
        else:
            raise ConfigError(
                f"{where} {key}: {action!r} is not an action name "
                "(lower case letters, digits and _, up to 32, e.g. 'department_3')"
            )
    return MappingProxyType(keymap)


class KeypadMapper:
    """Turns key presses into action names; releases, auto-repeat and unmapped keys give None.

    Num lock is deliberately ignored: a POS keypad's digits must mean digits whatever its LED says.
    """

    def __init__(self, keymap: Mapping[str, str] = DEFAULT_KEYMAP) -> None:
        self._by_code = {ecodes.ecodes[name]: action for name, action in keymap.items()}

    def feed(self, event: InputEvent) -> str | None:
        if event.type != ecodes.EV_KEY or event.value != 1:
            return None
        return self._by_code.get(event.code)
