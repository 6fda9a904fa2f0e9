from __future__ import annotations

import pytest
from evdev import InputEvent, ecodes

from terminal.core.configfile import ConfigError
from terminal.drivers.keymap import DEFAULT_KEYMAP, KeypadMapper, load_keymap
from terminal.drivers.keys import (
    KeyDecoder,
    WedgeAssembler,
    events_for_keys,
    events_for_text,
)
from terminal.drivers.layouts import DE, US, get_layout


def typed(events: list[InputEvent], decoder: KeyDecoder) -> str:
    return "".join(c for e in events if (c := decoder.feed(e)))


def key(code: int, value: int, at: float = 0.0) -> InputEvent:
    return InputEvent(int(at), int((at % 1) * 1e6), ecodes.EV_KEY, code, value)


@pytest.mark.parametrize("layout", [US, DE], ids=lambda layout: layout.name)
def test_text_round_trips_through_each_layout(layout) -> None:
    text = "%B8000123456^WANG/XIAOMING^3012101?;8000123456=3012101?\n"
    assert typed(events_for_text(text, layout=layout), KeyDecoder(layout)) == text


def test_german_layout_differs_from_us() -> None:
    # The same key codes type different characters: a reader on a QWERTZ PC sends KEY_Z for "y".
    events = events_for_text("zy", layout=US)
    assert typed(events, KeyDecoder(DE)) == "yz"
    assert typed(events_for_text("@€{", layout=DE), KeyDecoder(DE)) == "@€{"


def test_shift_caps_lock_and_num_lock() -> None:
    decoder = KeyDecoder(US)
    assert decoder.feed(key(ecodes.KEY_A, 1)) == "a"
    decoder.feed(key(ecodes.KEY_CAPSLOCK, 1))
    decoder.feed(key(ecodes.KEY_CAPSLOCK, 0))
    assert decoder.feed(key(ecodes.KEY_A, 1)) == "A"
    assert decoder.feed(key(ecodes.KEY_1, 1)) == "1"  # caps lock leaves digits alone
    decoder.feed(key(ecodes.KEY_LEFTSHIFT, 1))
    assert decoder.feed(key(ecodes.KEY_A, 1)) == "a"  # shift inverts caps lock for letters
    assert decoder.feed(key(ecodes.KEY_1, 1)) == "!"
    decoder.feed(key(ecodes.KEY_LEFTSHIFT, 0))
    assert decoder.feed(key(ecodes.KEY_KP7, 1)) == "7"
    decoder.feed(key(ecodes.KEY_NUMLOCK, 1))
    assert decoder.feed(key(ecodes.KEY_KP7, 1)) is None  # num lock off: Home, not a digit
    assert decoder.feed(key(ecodes.KEY_KPENTER, 1)) == "\n"
    decoder.feed(InputEvent(0, 0, ecodes.EV_LED, ecodes.LED_NUML, 1))
    assert decoder.feed(key(ecodes.KEY_KP7, 1)) == "7"
    decoder.feed(key(ecodes.KEY_LEFTCTRL, 1))
    assert decoder.feed(key(ecodes.KEY_C, 1)) is None


def test_wedge_burst_versus_typing() -> None:
    assembler = WedgeAssembler(KeyDecoder(US))
    swipe = events_for_text(";8000123456?\n", interval=0.002)
    fast = [r for e in swipe if (r := assembler.feed(e))]
    slow = [r for e in events_for_text("8000123456\n", start_time=5, interval=0.2)
            if (r := assembler.feed(e))]
    assert [(r.text, r.kind) for r in fast] == [(";8000123456?", "burst")]
    assert [(r.text, r.kind) for r in slow] == [("8000123456", "typed")]
    assert "8000123456" not in repr(fast[0])


def test_wedge_without_enter_completes_when_idle_and_backspace_corrects() -> None:
    assembler = WedgeAssembler(KeyDecoder(US), idle_complete=0.3)
    for event in events_for_text("12x", interval=0.002) + events_for_keys(["KEY_BACKSPACE"], 0.01):
        assert assembler.feed(event) is None
    assert assembler.expire(0.1) is None
    done = assembler.expire(1.0)
    assert done is not None and done.text == "12" and not done.terminated
    assert not assembler.pending and assembler.expire(2.0) is None


def test_synthetic_events_refuse_what_cannot_be_typed() -> None:
    with pytest.raises(ValueError, match="'王' at position 0 cannot be typed on layout 'us'"):
        events_for_text("王")
    with pytest.raises(ValueError, match="'KP1' is not an evdev key name"):
        events_for_keys(["KP1"])
    with pytest.raises(KeyError, match="unknown keyboard layout 'fr'"):
        get_layout("fr")


def test_keypad_actions_from_default_keymap() -> None:
    mapper = KeypadMapper()
    actions = [a for e in events_for_keys(["KEY_F1", "KEY_KP1", "KEY_2", "KEY_KPDOT",
                                           "KEY_KPASTERISK", "KEY_KPENTER", "KEY_ESC", "KEY_Q"])
               if (a := mapper.feed(e))]
    assert actions == ["member", "digit_1", "digit_2", "decimal_point", "quantity", "enter",
                       "clear"]
    assert mapper.feed(key(ecodes.KEY_F3, 2)) is None  # auto-repeat never repeats a tender


def test_keymap_overrides_and_errors() -> None:
    keymap = load_keymap({"KEY_F11": "department_7", "KEY_F12": "", "KEY_KPSLASH": "no_sale"})
    assert keymap["KEY_F11"] == "department_7" and "KEY_F12" not in keymap
    assert keymap["KEY_KPSLASH"] == "no_sale" and DEFAULT_KEYMAP["KEY_F12"] == "department_2"
    with pytest.raises(ConfigError, match=r"\[keypad.keymap\]: 'KEY_FOO' is not an evdev key"):
        load_keymap({"KEY_FOO": "cash"})
    with pytest.raises(ConfigError, match=r"KEY_F1: 'Cash!' is not an action name"):
        load_keymap({"KEY_F1": "Cash!"})
    with pytest.raises(ConfigError, match="must be a string"):
        load_keymap({"KEY_F1": 3})  # type: ignore[dict-item]


def test_default_keymap_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "drivers.md").read_text()
    for name, action in DEFAULT_KEYMAP.items():
        assert f"| `{name}` | `{action}` |" in doc, name
