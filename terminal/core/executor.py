"""One named single-thread executor per device, so blocking I/O never stalls the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class DeviceExecutor:
    """Runs a device's blocking calls in order on its own thread (``posterm-printer`` ...)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"posterm-{self.name}")
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
