"""What the output devices (pole display, LCD, printer) share: being absent and coming back.

A device whose write fails releases itself, says so (``present``, ``state``, one log line) and
arms a timer on the event loop; each tick runs the device's blocking ``start()`` on the device's
own :class:`DeviceExecutor`, backing off from :data:`FIRST_RETRY` to :data:`LONGEST_RETRY`
seconds, until the device is back (DESIGN promise 8). The input devices do the same by rescanning
(``input.py``).

A subclass says how to open (``_open``: open and show again what the device should show), how to
release (``_release``) and, optionally, what to do once it came back by itself (``_returned``).
Whoever must know when the device goes or returns (the cashier's notices) registers with
:meth:`OutputDevice.watch`: it is called on the loop, once per change, as the change is seen (a
failed write, or the retry timer reopening it), so nobody needs to poll ``present``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from terminal.core.executor import DeviceExecutor

log = logging.getLogger(__name__)

FIRST_RETRY = 0.25  # seconds after a loss before the first try to reopen
LONGEST_RETRY = 4.0  # backoff ceiling: a returned device is back within this


class OutputDevice:
    """``start()`` / ``close()`` block (call them from a thread or at start-up); from the loop use
    ``await connect()`` / ``await aclose()``. A closed device may be started again."""

    kind = "device"  # for messages: "pole display", "LCD", "printer"

    def __init__(self, name: str) -> None:
        self.executor = DeviceExecutor(name)
        self.present = False
        self.state = "not started"
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._delay = FIRST_RETRY
        self._closed = False
        self._watchers: list[Callable[[bool], None]] = []
        self.simulator: Any = None  # the simulated back-end's device, if simulated
        self.cause: BaseException | None = None  # what made the device absent last

    # --- what a device says ---

    def _errors(self) -> tuple[type[Exception], ...]:
        """Exceptions meaning the device is gone (SerialException and USBError are OSErrors)."""
        return (OSError,)

    def _open(self) -> None:
        """Blocking: open the device and show what it should show; raise ``_errors()`` if absent."""
        raise NotImplementedError

    def _release(self) -> None:
        """Blocking: let go of the device; must not raise for a device already gone."""
        raise NotImplementedError

    def fix_hint(self) -> str:
        """What to check when the device is absent; logged with the loss."""
        return ""

    def _forget_simulator(self) -> None:
        """After ``close()``: a simulated device (``simulator``, kept across reconnects) is made
        afresh by the next start."""
        self.simulator = None

    def _returned(self) -> None:
        """Blocking, on the device's thread: the device came back by itself."""

    def watch(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(present)`` on the event loop each time the device goes absent (also
        when it cannot be opened at start) or comes back; not when it is closed."""
        self._watchers.append(callback)

    def _changed(self, present: bool) -> None:
        # Any thread: hand the change to the watchers on the loop (none before connect()).
        loop = self._loop
        if loop is None or self._closed:
            return
        for callback in self._watchers:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nobody to tell
                loop.call_soon_threadsafe(callback, present)

    # --- shared ---

    def start(self) -> bool:
        """Open the device; a failure is reported (``state``, log), never raised."""
        self._closed = False
        return self._start()

    def _start(self) -> bool:
        try:
            self._open()
        except self._errors() as exc:
            self._lost(exc, opening=True)
            return False
        with self._lock:
            was = self.state
            self.present, self.state, self.cause = True, "present", None
        if was.startswith("absent"):
            log.info("%s is back", self.kind)
            self._changed(True)
        return True

    async def connect(self) -> bool:
        """``start()`` on the device's thread; while it fails, the retry timer keeps trying."""
        self._loop = asyncio.get_running_loop()
        return await self.executor.run(self.start)

    def close(self) -> None:
        self._stop()
        self.executor.shutdown()  # waits for a write or reopen in flight
        self._release()
        self._mark_closed()
        self._forget_simulator()

    async def aclose(self) -> None:
        """``close()`` without blocking the loop on a device write in flight."""
        self._stop()
        await self.executor.run(self._release)
        self.executor.shutdown()
        self._mark_closed()
        self._forget_simulator()

    def _lost(self, exc: BaseException, *, opening: bool = False) -> None:
        """Any thread: the device is gone. Release it, report once and arm the retry timer."""
        with contextlib.suppress(*self._errors()):
            self._release()
        reason = f"cannot open: {exc}" if opening else f"lost: {exc}"
        with self._lock:
            first = self.present or not self.state.startswith("absent")
            self.present, self.state, self.cause = False, f"absent ({reason})", exc
        if first:
            hint = self.fix_hint()
            log.warning("%s %s; retrying every %g s at most%s", self.kind, reason, LONGEST_RETRY,
                        f"; fix: {hint}" if hint else "")
            self._changed(False)
        loop = self._loop
        if loop is not None and not self._closed:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to retry on
                loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        # On the loop: one timer or one retry at a time.
        if self.present or self._closed or self._timer is not None or self._retrying is not None:
            return
        assert self._loop is not None
        self._timer = self._loop.call_later(self._delay, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._retrying = self._loop.create_task(self._retry(), name=f"reopen {self.kind}")

    async def _retry(self) -> None:
        try:
            back = await self.executor.run(self._reopen)
        finally:
            self._retrying = None
        if back:
            self._delay = FIRST_RETRY
        else:
            self._delay = min(self._delay * 2, LONGEST_RETRY)
            self._arm()

    def _reopen(self) -> bool:
        if self._closed:
            return True  # closed while waiting: stop retrying
        if not self._start():
            return False
        self._returned()
        return True

    def _stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._retrying is not None:
            self._retrying.cancel()
            self._retrying = None
        self._loop = None

    def _mark_closed(self) -> None:
        with self._lock:
            self.present, self.state = False, "closed"
