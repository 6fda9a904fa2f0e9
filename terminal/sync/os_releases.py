"""The daemon's half of operating-system updates: HQ's retained announcement on
``{root}/os/chain`` is checked, its bundle fetched and left for the root installer
(terminal.field.os_update, ``posterm-os-update.path``). Runs unprivileged; the installer checks
everything again before RAUC sees the bundle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from terminal.field.os_update import (
    COMPATIBLE,
    AlreadyInstalled,
    OsUpdateError,
    check,
    fetch,
    leave_ready,
)
from terminal.protocol.bundle import TrustStore
from terminal.protocol.mqtt import Message

log = logging.getLogger(__name__)

Report = Callable[[str, str, str, str], Awaitable[None]]  # (what, reason, detail, ref)


class OsReleases:
    """Fetches the announced OS bundle into ``{state_dir}/updates/os-ready``; one at a time,
    the latest announcement wins."""

    def __init__(self, trust: TrustStore, state_dir: Path, report: Report,
                 compatible: str = COMPATIBLE,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.trust, self.state_dir, self.report = trust, state_dir, report
        self.compatible, self.now = compatible, now
        self.ready = state_dir / "updates/os-ready"
        self._lock = asyncio.Lock()
        self.fetched: str | None = None  # the version last left for the installer

    async def handle(self, message: Message) -> None:
        if not message.payload:
            return  # HQ withdrew the announcement
        async with self._lock:
            try:
                release = await asyncio.to_thread(check, message.payload, self.trust,
                                                  self.state_dir, self.now(), self.compatible)
                if self.fetched == release.version:
                    return  # left for the installer already (a reconnect re-delivers it)
                log.info("OS release %s announced: fetching %s", release.version, release.url)
                bundle = await asyncio.to_thread(fetch, release,
                                                 self.state_dir / "updates/os-fetch")
                await asyncio.to_thread(leave_ready, message.payload, bundle, self.ready)
            except AlreadyInstalled as exc:
                log.info("%s", exc)
                return
            except OsUpdateError as exc:
                await self.report("os_release", "refused", str(exc), message.topic)
                return
            self.fetched = release.version
            log.info("OS release %s fetched for the installer", release.version)
