"""What a daemon that cannot sell yet shows while it waits (for its card key, for HQ's rules).

It is READY (systemd's ``Type=notify``: the daemon is up and doing what its state allows, docs/
field.md, "READY"), says in STATUS= what it waits for, shows it on the pole display and the LCD
(each in its configured language), and keeps systemd's watchdog fed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from terminal.daemon.config import Config

if TYPE_CHECKING:
    from terminal.core.systemd import Notifier


class WaitingScreens:
    """The pole display, the LCD and STATUS= of a waiting daemon; ``async with`` opens the
    displays (absent ones are no fault) and feeds the watchdog until it closes them."""

    def __init__(self, config: Config, notifier: Notifier) -> None:
        from terminal.drivers.lcd import open_lcd
        from terminal.drivers.pole import open_pole

        self.notifier = notifier
        self.pole_language = "en" if config.pole.charset == "ascii" else "zh"
        self.lcd_language = config.lcd.language if config.lcd is not None else "zh"
        self.pole = open_pole(config.pole)
        self.lcd = open_lcd(config.lcd) if config.lcd is not None else None
        self._pings: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WaitingScreens:
        from terminal.core.systemd import watchdog_interval

        for device in (self.pole, self.lcd):
            if device is not None:
                with contextlib.suppress(OSError):
                    await device.connect()
        interval = watchdog_interval()
        if interval is not None:
            async def ping() -> None:
                while True:
                    self.notifier.watchdog()
                    await asyncio.sleep(interval)
            self._pings = asyncio.get_running_loop().create_task(ping(), name="watchdog-waiting")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pings is not None:
            self._pings.cancel()
        for device in (self.pole, self.lcd):
            if device is not None:
                await device.aclose()

    async def show(self, pole: dict[str, tuple[str, str]], status: str,
                   lcd: dict[str, str]) -> None:
        """STATUS=, and the pole's two lines and the LCD's prompt in their languages (keyed
        "zh" and "en")."""
        from terminal.drivers.lcd import LcdFrame

        self.notifier.status(status)
        with contextlib.suppress(OSError):
            await self.pole.update(*pole[self.pole_language])
        if self.lcd is not None:
            with contextlib.suppress(OSError):
                await self.lcd.update(LcdFrame(None, None, None, lcd[self.lcd_language]))
