"""The cashier is told when a display or an input device goes and when it comes back.

Every device already notices its own loss and return: the pole display and the LCD when a write
fails and when their retry timer reopens them (:meth:`OutputDevice.watch
<terminal.drivers.reconnect.OutputDevice.watch>`), the card reader, scanner and keypad when a
read fails and when their rescan finds them again (:class:`~terminal.app.inputs.WatchedPort`).
Each change comes here once, on the loop, as it is seen: nothing polls. Here it becomes

- a notice on whatever display still works (:class:`~terminal.app.screens.Displays` decides
  where, so the sale's total and the cashier's prompt stay), "... back" once on the return;
- one log line per change of "is any display working", since with none the cashier cannot be
  told anything: systemd's ``STATUS=`` (``Till.status``) and HQ's status topic say it then;
- a fresh status to HQ (``on_change`` listeners), so the retained status names the device now
  rather than at the next birth.

The sale in progress is never touched: a notice only changes what the displays show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from terminal.app.catalogue import said
from terminal.app.screens import Displays, Notice

log = logging.getLogger(__name__)

def notice_for(device: str, kind: str, present: bool, displays: Displays) -> Notice:
    """The notice for ``device`` (its configured name) of ``kind`` (pole, lcd, msr, ...): in
    full in the LCD's language, and for the pole's second line in the pole's (the pole cannot
    say it is gone itself: that short form is empty)."""
    what = said(f"device.{kind}.{'back' if present else 'gone'}")
    return Notice(device, displays.long(what), displays.pole_lines(what)[1])


class DeviceNotices:
    """Turns presence changes into notices; ``changed`` is called on the loop, once a change."""

    def __init__(self, displays: Displays) -> None:
        self.displays = displays
        self.on_change: list[Callable[[], None]] = []  # e.g. publish HQ's status again
        self.told: list[str] = []  # the notices given, oldest first
        self.absent: set[str] = set()  # the devices said to be gone
        self._had_display = True
        self._tasks: set[asyncio.Task[Any]] = set()
        self._others: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop = asyncio.get_running_loop()  # built on the loop the terminal runs on

    def watch_displays(self) -> None:
        """Hook the pole display and the LCD (before they are connected)."""
        for name in ("pole", "lcd"):
            device = getattr(self.displays, name)
            if device is not None:
                device.watch(lambda present, name=name: self.changed(name, name, present))

    def changed(self, device: str, kind: str, present: bool) -> None:
        """``device`` (configured name) of ``kind`` went (``present`` False) or came back.

        Called off the loop (a simulated device unplugged by a script), it is handed to it."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            self._loop.call_soon_threadsafe(self.changed, device, kind, present)
            return
        if self._closed or present == (device not in self.absent):
            return  # back but never said to be gone (present at start), or gone and said so
        if present:
            self.absent.discard(device)
        else:
            self.absent.add(device)
        notice = notice_for(device, kind, present, self.displays)
        self.told.append(notice.text)
        del self.told[:-64]  # the latest, for tests and a look in the debugger
        log.info("cashier told: %s", notice.text)
        self.later(self.displays.device_changed(notice, present), settle=True)
        self._displays_changed()
        for listener in self.on_change:
            listener()

    def _displays_changed(self) -> None:
        working = self.displays.working()
        if not working and self._had_display:
            states = ", ".join(f"{name} {state}" for name, state in self.displays.health().items())
            log.error("no display works: the cashier cannot be told anything (%s)", states)
        elif working and not self._had_display:
            log.warning("a display works again: %s", ", ".join(working))
        self._had_display = bool(working)

    def later(self, job: Coroutine[Any, Any, Any], *, settle: bool = False) -> None:
        """Run ``job`` on the loop; :meth:`settle` waits for it when ``settle``, :meth:`close`
        cancels it otherwise (a status to HQ may wait for the broker)."""
        task = self._loop.create_task(job)
        tasks = self._tasks if settle else self._others
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def settle(self) -> None:
        """Wait until every notice given so far is on the displays."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def close(self) -> None:
        """No more notices (the devices are being released); the last ones reach the displays."""
        self._closed = True
        for task in list(self._others):
            task.cancel()
        await asyncio.gather(*self._others, return_exceptions=True)
        await self.settle()
        await self.displays.close()
