"""What the customer and the cashier see: two pole display lines and the LCD frame.

Writes go to each device's own thread. A display that fails reports itself (``state``, one log
line) and is skipped: the sale goes on without it (DESIGN promise 8). Its retry timer reopens it
when it returns, and it shows the current lines and frame again.
"""

from __future__ import annotations

import asyncio
import re

from terminal.drivers.lcd import Lcd, LcdFrame
from terminal.drivers.pole import PoleDisplay
from terminal.drivers.textwidth import wrap
from terminal.drivers.transliterate import ascii_only
from terminal.loyalty.operations import MemberView

_WORD = re.compile(r"\S+")


def pole_name(name: str) -> str:
    """A bilingual name shown on an ASCII pole: "草莓 Strawberries" -> "Strawberries".

    Names with no ASCII words stay as they are; the driver shows those as placeholders.
    """
    words = _WORD.findall(name)
    latin = [w for w in words if all(ascii_only(c) for c in w)]
    return " ".join(latin) if latin and len(latin) < len(words) else name


_CLAUSE_END = re.compile(r"[:,(]")


def two_lines(text: str, columns: int) -> tuple[str, str]:
    """A message on the pole's two lines; the LCD shows it whole.

    A long message keeps what matters to a person at the counter: its first clause (what
    happened) and its last (what to do): "Card not read (...), please swipe again" ->
    "Card not read" / "please swipe again".
    """
    parts = wrap(text, columns) or [""]
    if len(parts) <= 2:
        return parts[0], parts[1] if len(parts) > 1 else ""
    cut = _CLAUSE_END.search(text)
    tail = re.split(r"[:,] ", text)[-1]
    if cut is None or tail == text:
        return parts[0], parts[1]
    return (wrap(text[:cut.start()].strip(), columns) or [""])[0], wrap(tail, columns)[0]


class Displays:
    def __init__(self, pole: PoleDisplay | None, lcd: Lcd | None) -> None:
        self.pole = pole
        self.lcd = lcd
        self.columns = pole.config.columns if pole is not None else 20
        self.lines: tuple[str, str] = ("", "")  # what was last sent to the pole
        self.frame: LcdFrame | None = None

    async def show(self, line1: str, line2: str, member: MemberView | None = None,
                   prompt: str | None = None) -> None:
        """Pole: the two lines. LCD: the member, tier and balance, and ``prompt`` (or line 2)."""
        self.lines = (line1, line2)
        self.frame = LcdFrame(
            member=(member.name or f"****{member.card_last4}") if member else None,
            tier=member.tier if member else None,
            balance=member.balance if member else None,
            prompt=prompt if prompt is not None else f"{line1} {line2}".strip(),
        )
        jobs = []
        if self.pole is not None:
            jobs.append(self.pole.update(line1, line2))
        if self.lcd is not None:
            jobs.append(self.lcd.update(self.frame))
        await asyncio.gather(*jobs)  # False from an absent display: it reported itself

    def health(self) -> dict[str, str]:
        """Each configured display's ``state`` ("present", "absent (...)"), without I/O."""
        devices = {"pole": self.pole, "lcd": self.lcd}
        return {name: device.state for name, device in devices.items() if device is not None}
