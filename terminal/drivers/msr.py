"""Magnetic-stripe swipes typed by a keyboard-wedge reader -> a loyalty card number.

Tracks follow ISO/IEC 7813 (track 1 ``%B<PAN>^<NAME>^<YYMM...>?``, track 2 ``;<PAN>=<data>?``) and
ISO 4909 (track 3, ``;`` or ``+`` start sentinel, two-digit format code). A reader may put a prefix
before the tracks and an Enter after them; a track it could not read comes through as ``%E?``.

Two rules keep the till honest (DESIGN promises 7 and 9): a swipe that is garbled, partial or
inconsistent between tracks is a :class:`SwipeReadError`, never a guessed number; and anything that
looks like a payment card is a :class:`PaymentCardRefused` whose text never carries the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from terminal.core.pan import PaymentCardRefused, is_payment_pan, luhn_valid
from terminal.core.refusal import InputRefused

__all__ = [
    "CardRead",
    "InputRefused",
    "PaymentCardRefused",
    "SwipeReadError",
    "is_payment_pan",
    "luhn_valid",
    "parse_swipe",
]


class SwipeReadError(InputRefused):
    """A swipe not read: ``reason`` in English, ``why`` naming it for other languages."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(f"Card not read ({reason}), please swipe again", why=why)
        self.reason = reason


@dataclass(frozen=True)
class CardRead:
    """A member card read from its stripe. ``repr`` masks the number for logs."""

    number: str = field(repr=False)
    name: str | None
    tracks: tuple[int, ...]

    @property
    def masked(self) -> str:
        return "*" * max(0, len(self.number) - 4) + self.number[-4:]

    def __repr__(self) -> str:
        return f"CardRead(number={self.masked!r}, name={self.name!r}, tracks={self.tracks})"


_DIGIT_RUN = re.compile(r"[0-9]+")

_TRACK1 = re.compile(r"%([A-Z])([0-9]{1,19})\^([ -~]{0,26}?)\^([ -~]*?)\?")
_TRACK23 = re.compile(r"([;+])([0-9]{1,107}(?:=[0-9=]*)?)\?")
_ERROR_TRACK = re.compile(r"[%;+]E\?")
_TRACK1_CHARSET = re.compile(r"[ -_]*")  # track 1 is 6-bit: space to underscore


def parse_swipe(text: str) -> CardRead:
    """Parse what a wedge reader typed for one swipe (prefix and trailing Enter allowed)."""
    # Refuse payment cards first, on any digit run, so even a garbled payment swipe never yields
    # a "swipe again" loop or reaches the code paths below with the number in hand.
    if any(is_payment_pan(run) for run in _DIGIT_RUN.findall(text)):
        raise PaymentCardRefused()
    body = text.rstrip("\r\n")
    start = _first_sentinel(body)
    if start < 0:
        raise SwipeReadError("no card track found", "swipe.no_track")
    numbers: list[tuple[int, str]] = []
    name: str | None = None
    read_errors = 0
    position = start
    seen_track2 = False
    while position < len(body):
        error = _ERROR_TRACK.match(body, position)
        if error:
            read_errors += 1
            position = error.end()
            continue
        track1 = _TRACK1.match(body, position)
        if track1 and not numbers and _TRACK1_CHARSET.fullmatch(track1.group(0)):
            numbers.append((1, track1.group(2)))
            name = _holder_name(track1.group(3))
            position = track1.end()
            continue
        track = _TRACK23.match(body, position)
        if track:
            number, is_track3 = _track23_number(track, seen_track2)
            seen_track2 = True
            numbers.append((3 if is_track3 else 2, number))
            position = track.end()
            continue
        raise SwipeReadError("damaged or incomplete track", "swipe.damaged")
    if not numbers and read_errors:
        raise SwipeReadError("the reader reported a read error", "swipe.read_error")
    if not numbers:
        raise SwipeReadError("empty track", "swipe.empty")
    distinct = {number for _track, number in numbers}
    if len(distinct) != 1:
        raise SwipeReadError("tracks disagree", "swipe.disagree")
    (number,) = distinct
    if not number:
        raise SwipeReadError("no card number on the track", "swipe.no_number")
    return CardRead(number=number, name=name, tracks=tuple(t for t, _n in numbers))


def _first_sentinel(body: str) -> int:
    # Readers may prefix the tracks with a fixed string; the prefix never contains a sentinel.
    positions = [p for p in (body.find("%"), body.find(";"), body.find("+")) if p >= 0]
    return min(positions, default=-1)


def _track23_number(track: re.Match[str], seen_track2: bool) -> tuple[str, bool]:
    sentinel, data = track.group(1), track.group(2)
    is_track3 = sentinel == "+" or seen_track2
    number = data.split("=", 1)[0]
    if is_track3:
        # ISO 4909: two-digit format code, then the PAN up to the field separator.
        if len(number) < 3:
            raise SwipeReadError("damaged track 3", "swipe.damaged_3")
        number = number[2:]
    return number, is_track3


def _holder_name(raw: str) -> str | None:
    # "WANG/XIAOMING" -> "WANG XIAOMING"; titles after "." are dropped.
    surname, _, given = raw.strip().partition("/")
    given = given.split(".", 1)[0].strip()
    name = f"{surname.strip()} {given}".strip()
    return name or None
