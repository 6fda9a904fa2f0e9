"""What the customer and the cashier see: two pole display lines and the LCD frame.

Writes go to each device's own thread. A display that fails reports itself (``state``, one log
line) and is skipped: the sale goes on without it (DESIGN promise 8). Its retry timer reopens it
when it returns, and it shows the current lines and frame again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from terminal.app.catalogue import LABELS, Language, Said
from terminal.app.pole_text import name_for, pole_language
from terminal.app.tier_words import tier_said
from terminal.drivers.lcd import Lcd, LcdFrame
from terminal.drivers.pole import PoleDisplay
from terminal.loyalty.operations import MemberView


@dataclass(frozen=True)
class Notice:
    """What the cashier is told about one device: in full (LCD, log, status) and in the pole's
    20 columns (``short``; empty where the pole cannot say it)."""

    device: str  # the configured name: "pole", "lcd", or the input's name ("reader")
    text: str
    short: str


SEPARATOR = " · "
LEAD_SECONDS = 5.0  # how long a new notice leads the LCD's prompt


class Displays:
    """The till's two lines and prompt, and the device notices laid over them.

    A device notice (:mod:`terminal.app.device_notices`) never replaces what the sale needs:

    - the LCD, when present, carries it on its prompt bar: for :data:`LEAD_SECONDS` after the
      change it leads the prompt ("Card reader disconnected — key the member number · Due 18.50
      ..."), the till's outputs going on behind it; then the prompt leads again and the notices
      of the devices still absent follow it, so a narrow panel cuts the reminder, never the
      prompt for long. The member, tier and balance stay.
    - the pole, only when it is the only working display, carries the notice's short form on its
      second line, and only over a cashier's sentence whose second line is free or is the
      standing prompt of the mode (``spare``): the item and total, the member's points, the
      amount due, the change and everything else the till lays out on two lines stay as they are.
      A notice that finds no such line waits for the next one.
    - "... back" is said once: it leads like the others, and goes at the end of its lead (or,
      where it had to wait for a free pole line, at the till's next output after it was shown).

    ``lines`` and ``frame`` are what was last sent to the pole and the LCD (what shows, or shows
    on return); ``asked`` is what the till asked for.
    """

    def __init__(self, pole: PoleDisplay | None, lcd: Lcd | None) -> None:
        self.pole = pole
        self.lcd = lcd
        self.columns = pole.config.columns if pole is not None else 20
        # The pole speaks Chinese when it takes GB2312/GB18030, else English with pinyin names;
        # the LCD (which draws any character) in its configured language.
        self.language: Language = pole_language(pole.config.charset) if pole else "en"
        self.show_name = name_for(self.language)
        self.lcd_language: Language = lcd.config.language if lcd is not None else "zh"  # type: ignore[assignment]
        self.lines: tuple[str, str] = ("", "")  # what was last sent to the pole
        self.frame: LcdFrame | None = None
        self.asked: tuple[str, str] = ("", "")
        self.notices: dict[str, Notice] = {}  # the devices absent now, oldest first
        self.returned: Notice | None = None  # "... back", until shown once
        self._member: MemberView | None = None
        self._prompt: str | None = None
        self._spare = False  # the till's second line may carry a notice (pole alone)
        self._lead: Notice | None = None  # the change that leads the LCD's prompt now
        self._lead_timer: asyncio.TimerHandle | None = None
        self._shown_returned = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.lead_seconds = LEAD_SECONDS

    def pole_lines(self, said: Said) -> tuple[str, str]:
        """``said`` in the pole's language, written for its width."""
        return said.pole(self.language, self.columns, self.show_name)

    def long(self, said: Said | Sequence[Said]) -> str:
        """``said`` whole, in the LCD's language (several: one after the other)."""
        parts = [said] if isinstance(said, Said) else said
        stop = "。" if self.lcd_language == "zh" else ". "
        return stop.join(part.long(self.lcd_language) for part in parts)

    def label(self, key: str) -> str:
        """A word shown beside an amount ("TOTAL"), in the pole's language."""
        zh, en = LABELS[key]
        return zh if self.language == "zh" else en

    async def show(self, line1: str, line2: str, member: MemberView | None = None,
                   prompt: str | None = None, spare: bool = False) -> None:
        """Pole: the two lines. LCD: the member, tier and balance, and ``prompt`` (or line 2).

        ``spare``: the second line holds nothing the customer or cashier must read now (a
        sentence that fits one line, or the standing prompt): a device notice may take it.
        """
        if self._shown_returned and self._lead is None:
            self.returned, self._shown_returned = None, False
        self.asked, self._member, self._prompt, self._spare = (line1, line2), member, prompt, spare
        await self._send()

    async def device_changed(self, notice: Notice, present: bool) -> None:
        """A device went (``notice`` says so) or came back (``notice`` says "... back")."""
        if present:
            self.notices.pop(notice.device, None)
            self.returned, self._shown_returned = notice, False
        else:
            self.notices[notice.device] = notice
            if self.returned is not None and self.returned.device == notice.device:
                self.returned = None
        self._lead = notice
        if self._lead_timer is not None:
            self._lead_timer.cancel()
        self._lead_timer = asyncio.get_running_loop().call_later(self.lead_seconds,
                                                                 self._lead_over)
        await self._send()

    def _lead_over(self) -> None:
        self._lead = self._lead_timer = None
        if self._shown_returned:
            self.returned, self._shown_returned = None, False
        task = asyncio.get_running_loop().create_task(self._send(), name="notice behind")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """No more notice timers (the devices are about to be released)."""
        if self._lead_timer is not None:
            self._lead_timer.cancel()
            self._lead_timer = None
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def leading(self) -> Notice | None:
        """The notice that leads the LCD's prompt now, if any."""
        return self._lead

    @property
    def alone(self) -> bool:
        """The pole is the only display that works (no LCD, or the LCD is absent)."""
        return self.lcd is None or not self.lcd.present

    def _pole_notice(self) -> Notice | None:
        if self.returned is not None and self.returned.short:
            return self.returned
        for notice in reversed(self.notices.values()):
            if notice.short:
                return notice
        return None

    def _lcd_prompt(self) -> str:
        line1, line2 = self.asked
        prompt = self._prompt if self._prompt is not None else f"{line1} {line2}".strip()
        lead = self._lead if self._lead is not None else self.returned
        if lead is not None and lead.device == "lcd" and lead.device in self.notices:
            lead = None  # the LCD cannot tell its own absence
        others = [n.text for d, n in self.notices.items()
                  if d != "lcd" and (lead is None or d != lead.device)]
        if lead is not None:
            return SEPARATOR.join([lead.text, prompt, *others])
        return SEPARATOR.join([prompt, *others])

    async def _send(self) -> None:
        line1, line2 = self.asked
        pole_notice = self._pole_notice() if self._spare and self.alone else None
        if pole_notice is not None:
            line2 = pole_notice.short
        shown_returned = self.returned is not None and (
            (self.lcd is not None and self.lcd.present) or pole_notice is self.returned)
        self._shown_returned = self._shown_returned or shown_returned
        member = self._member
        self.lines = (line1, line2)
        self.frame = LcdFrame(
            member=(member.name or f"****{member.card_last4}") if member else None,
            tier=tier_said(member.tier, self.lcd_language) if member else None,
            balance=member.balance if member else None,
            prompt=self._lcd_prompt(),
        )
        jobs = []
        if self.pole is not None:
            jobs.append(self.pole.update(line1, line2))
        if self.lcd is not None:
            jobs.append(self.lcd.update(self.frame))
        await asyncio.gather(*jobs)  # False from an absent display: it reported itself

    def working(self) -> list[str]:
        """The configured displays that work now."""
        devices = {"pole": self.pole, "lcd": self.lcd}
        return [name for name, device in devices.items() if device is not None and device.present]

    @property
    def faults(self) -> str:
        """The devices absent now, for systemd's STATUS= ("" when all are there)."""
        if not self.notices:
            return ""
        absent = ", ".join(self.notices)
        if not self.working():
            return f"NO DISPLAY; absent: {absent}"
        return f"absent: {absent}"

    def health(self) -> dict[str, str]:
        """Each configured display's ``state`` ("present", "absent (...)"), without I/O."""
        devices = {"pole": self.pole, "lcd": self.lcd}
        return {name: device.state for name, device in devices.items() if device is not None}
