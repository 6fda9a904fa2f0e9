"""Device inputs -> the till, one at a time.

``InputPort`` callbacks run on the loop and must not wait; they queue the input here, and one
task hands each to the :class:`~terminal.app.flow.Till` in arrival order. Stopping lets the input
being handled (a sale being committed) finish before the loop ends.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from terminal.app.flow import Till
from terminal.drivers.keys import WedgeInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TillInput:
    role: str  # keypad, msr or scanner
    value: str  # the action name, or the text the wedge device typed


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
