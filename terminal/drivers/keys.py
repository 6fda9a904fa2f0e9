"""Key events -> characters, and keyboard-wedge bursts (card reader, scanner) -> whole inputs.

A wedge device types its data as fast key presses ending in Enter. :class:`WedgeAssembler` groups
the characters into one input and tells a machine burst from a person typing by the gaps between
keys. :func:`events_for_text` does the reverse, so scenario replays and tests drive the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from evdev import InputEvent, ecodes

from terminal.drivers.layouts import KEYPAD_CHARS, KEYPAD_FIXED, US, Layout

_SHIFTS = frozenset((ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT))
_CTRLS = frozenset((ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL))


class KeyDecoder:
    """Tracks shift, AltGr, ctrl, caps lock and num lock; ``feed`` returns the character typed."""

    def __init__(self, layout: Layout = US, *, numlock: bool = True) -> None:
        self.layout = layout
        self.numlock = numlock
        self.capslock = False
        self._held: set[int] = set()

    def feed(self, event: InputEvent) -> str | None:
        if event.type == ecodes.EV_LED:
            # The kernel reports the real LED state; trust it over our own toggling.
            if event.code == ecodes.LED_CAPSL:
                self.capslock = bool(event.value)
            elif event.code == ecodes.LED_NUML:
                self.numlock = bool(event.value)
            return None
        if event.type != ecodes.EV_KEY:
            return None
        code, value = event.code, event.value
        if value == 0:
            self._held.discard(code)
            return None
        if value == 1:
            self._held.add(code)
            if code == ecodes.KEY_CAPSLOCK:
                self.capslock = not self.capslock
            elif code == ecodes.KEY_NUMLOCK:
                self.numlock = not self.numlock
        return self._char(code)

    def _char(self, code: int) -> str | None:
        if code == ecodes.KEY_BACKSPACE:
            return "\b"
        if code in KEYPAD_FIXED:
            return KEYPAD_FIXED[code]
        if code in KEYPAD_CHARS:
            return KEYPAD_CHARS[code] if self.numlock else None
        if self._held & _CTRLS:
            return None
        char = self.layout.char(
            code,
            shift=bool(self._held & _SHIFTS),
            caps=self.capslock,
            altgr=ecodes.KEY_RIGHTALT in self._held,
        )
        return char or None


@dataclass(frozen=True)
class WedgeInput:
    """One complete input from a keyboard-wedge device, without its terminating Enter."""

    text: str = ""
    kind: Literal["burst", "typed"] = "burst"
    started: float = 0.0
    ended: float = 0.0
    terminated: bool = True

    def __repr__(self) -> str:
        # The text may hold a card track; keep it out of logs that repr objects.
        return (f"WedgeInput(kind={self.kind!r}, chars={len(self.text)}, "
                f"seconds={self.ended - self.started:.3f}, terminated={self.terminated})")


class WedgeAssembler:
    """Collects decoded characters into inputs ending in Enter, classifying them by timing.

    ``max_burst_gap``: the longest gap between two keys of a machine burst (readers type a
    character every 1-10 ms; people rarely under 50 ms). ``idle_complete``: after this long without
    a key, :meth:`expire` hands over what was typed, for readers configured without Enter.
    """

    def __init__(
        self,
        decoder: KeyDecoder,
        *,
        max_burst_gap: float = 0.035,
        idle_complete: float = 0.3,
        max_length: int = 512,
    ) -> None:
        self.decoder = decoder
        self.max_burst_gap = max_burst_gap
        self.idle_complete = idle_complete
        self.max_length = max_length
        self._chars: list[str] = []
        self._first = 0.0
        self._last = 0.0
        self._max_gap = 0.0

    @property
    def pending(self) -> bool:
        return bool(self._chars)

    def feed(self, event: InputEvent) -> WedgeInput | None:
        char = self.decoder.feed(event)
        if char is None:
            return None
        now = event.timestamp()
        if char == "\n":
            return self._complete(now, terminated=True) if self._chars else None
        if char == "\b":
            if self._chars:
                self._chars.pop()
            return None
        if self._chars:
            self._max_gap = max(self._max_gap, now - self._last)
        else:
            self._first, self._max_gap = now, 0.0
        self._last = now
        if len(self._chars) < self.max_length:
            self._chars.append(char)
        return None

    def expire(self, now: float) -> WedgeInput | None:
        """The pending input if no key came for ``idle_complete`` seconds, else None."""
        if self._chars and now - self._last >= self.idle_complete:
            return self._complete(self._last, terminated=False)
        return None

    def _complete(self, now: float, *, terminated: bool) -> WedgeInput:
        text = "".join(self._chars)
        gap = max(self._max_gap, now - self._last) if terminated else self._max_gap
        kind: Literal["burst", "typed"] = (
            "burst" if len(text) >= 2 and gap <= self.max_burst_gap else "typed"
        )
        self._chars.clear()
        return WedgeInput(text, kind, self._first, now, terminated)


def _key(code: int, value: int, when: float) -> InputEvent:
    sec = int(when)
    return InputEvent(sec, round((when - sec) * 1_000_000), ecodes.EV_KEY, code, value)


def _syn(when: float) -> InputEvent:
    sec = int(when)
    return InputEvent(sec, round((when - sec) * 1_000_000), ecodes.EV_SYN, ecodes.SYN_REPORT, 0)


def _press(code: int, when: float, modifiers: tuple[int, ...] = ()) -> list[InputEvent]:
    events: list[InputEvent] = []
    for modifier in modifiers:
        events += [_key(modifier, 1, when), _syn(when)]
    events += [_key(code, 1, when), _syn(when), _key(code, 0, when), _syn(when)]
    for modifier in reversed(modifiers):
        events += [_key(modifier, 0, when), _syn(when)]
    return events


def events_for_text(
    text: str, start_time: float = 0.0, interval: float = 0.002, layout: Layout = US
) -> list[InputEvent]:
    """The key events a wedge device on ``layout`` emits to type ``text`` ("\\n" = Enter)."""
    events: list[InputEvent] = []
    for index, char in enumerate(text):
        found = layout.key_for(char)
        if found is None:
            raise ValueError(
                f"character {char!r} at position {index} cannot be typed on layout {layout.name!r}"
            )
        code, shift, altgr = found
        modifiers = (ecodes.KEY_LEFTSHIFT,) * shift + (ecodes.KEY_RIGHTALT,) * altgr
        events += _press(code, start_time + index * interval, modifiers)
    return events


def events_for_keys(
    names: list[str] | tuple[str, ...], start_time: float = 0.0, interval: float = 0.15
) -> list[InputEvent]:
    """Press and release each evdev key name in turn, as a person on the keypad would."""
    events: list[InputEvent] = []
    for index, name in enumerate(names):
        code = ecodes.ecodes.get(name) if name.startswith(("KEY_", "BTN_")) else None
        if not isinstance(code, int):
            raise ValueError(f"{name!r} is not an evdev key name (e.g. KEY_KP1, KEY_F3)")
        events += _press(code, start_time + index * interval)
    return events
