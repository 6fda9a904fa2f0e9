"""Run one of HQ's long-lived services (a collector, the enrollment service) until SIGINT or
SIGTERM, then stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Protocol


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signal(service: Service, alive: Callable[[], bool] | None = None) -> None:
    """Run ``service`` until SIGINT or SIGTERM, or until ``alive()`` (asked every half
    second) is false: what it depends on is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async def watch() -> None:
        while alive is not None and alive():
            await asyncio.sleep(0.5)
        stop.set()

    await service.start()
    watching = asyncio.create_task(watch()) if alive is not None else None
    try:
        await stop.wait()
    finally:
        if watching is not None:
            watching.cancel()
        await service.stop()
