"""Device inputs -> the till, one at a time.

``InputPort`` callbacks run on the loop and must not wait; they queue the input here, and one
task hands each to the :class:`~terminal.app.flow.Till` in arrival order. Stopping lets the input
being handled (a sale being committed) finish before the loop ends.

:class:`WatchedPort` is the ``InputPort`` the terminal runs: the same driver, which also says when
its device goes (a failed read, an unplug) and comes back (its rescan found it), so the cashier is
told (:mod:`terminal.app.device_notices`) without anything polling faster than the rescan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from terminal.app.flow import Till
from terminal.drivers.input import InputDeviceConfig, InputHandler, InputPort
from terminal.drivers.keys import WedgeInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TillInput:
    role: str  # keypad, msr or scanner
    value: str  # the action name, or the text the wedge device typed


class WatchedPort(InputPort):
    """An :class:`InputPort` that calls ``on_presence(port, present)`` on the loop the driver runs
    on, once for each change the driver makes: the device lost on a read or unplugged, not found
    (or not openable) by a rescan, and found again. A device there from the start is no change."""

    def __init__(self, config: InputDeviceConfig, on_input: InputHandler,
                 on_presence: Callable[[InputPort, bool], None] | None = None,
                 **kwargs: Any) -> None:
        self._reported: bool | None = None  # the presence last reported (None: nothing yet)
        super().__init__(config, on_input, **kwargs)
        self._on_presence = on_presence

    @property  # type: ignore[override]
    def present(self) -> bool:
        return self._present

    @present.setter
    def present(self, value: bool) -> None:
        self._present = value
        self._report(value)

    @property  # type: ignore[override]
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        # A rescan that did not find (or could not open) the device says so only here.
        self._status = value
        if not self.present and value not in ("not started", "closed"):
            self._report(False)

    def _report(self, present: bool) -> None:
        callback = self.__dict__.get("_on_presence")
        if callback is None or self._reported is present:
            return
        was, self._reported = self._reported, present
        if was is None and present:
            return  # found at start: nothing to tell
        callback(self, present)

    def close(self) -> None:
        self._on_presence = None  # released at shutdown: nobody is to be told
        super().close()


class TillInputs:
    def __init__(self, till: Till) -> None:
        self.till = till
        self.queue: asyncio.Queue[TillInput | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def on_input(self, role: str, value: WedgeInput | str) -> None:
        """The ``on_input`` callback of every ``InputPort``."""
        text = value.text if isinstance(value, WedgeInput) else value
        if isinstance(value, WedgeInput) and not value.terminated:
            # A read that ended without Enter: still decoded, so a partial swipe is refused by
            # the parser rather than dropped silently.
            log.debug("%s input completed by idle time", role)
        self.queue.put_nowait(TillInput(role, text))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="till-inputs")

    async def _run(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                if item is None:
                    return
                await self.handle(item)
            except Exception:  # a bug in one handler must not stop the till taking input
                log.exception("input from %s not handled", item.role if item else "-")
            finally:
                self.queue.task_done()

    async def handle(self, item: TillInput) -> None:
        if item.role == "keypad":
            await self.till.on_action(item.value)
        elif item.role == "msr":
            await self.till.on_swipe(item.value)
        else:
            await self.till.on_scan(item.value)

    async def drain(self) -> None:
        """Wait until every input queued so far has been handled."""
        await self.queue.join()

    async def stop(self, timeout: float) -> None:
        """Finish the input being handled (a commit completes), drop the rest, and end."""
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
        self.queue.put_nowait(None)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.error("the till did not finish its input within %.0f s", timeout)
                self._task.cancel()
