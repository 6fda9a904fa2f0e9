"""The watchdog task ends when it is cancelled, whenever the cancellation comes: the daemon's
shutdown cancels it and then waits for it."""

from __future__ import annotations

import asyncio
import contextlib

from terminal.core.systemd import Notifier, watchdog_loop


def test_a_cancel_arriving_as_the_health_check_answers_ends_the_loop() -> None:
    """The race Python 3.11's wait_for loses (it returned the check's result and swallowed the
    cancel, so the loop pinged on and a daemon never stopped after SIGTERM): here the check
    itself cancels the task, then answers at once."""
    checks = 0

    async def main() -> bool:
        task: asyncio.Task[None] | None = None

        async def healthy() -> bool:
            nonlocal checks
            checks += 1
            assert task is not None
            task.cancel()  # the shutdown, just as the ledger thread answers
            return True

        task = asyncio.create_task(watchdog_loop(Notifier(None), 0.001, healthy))
        with contextlib.suppress(asyncio.CancelledError):  # a loop that goes on: TimeoutError
            await asyncio.wait_for(asyncio.shield(task), 5)
        return task.cancelled()

    assert asyncio.run(main()) is True
    assert checks == 1
