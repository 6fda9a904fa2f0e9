"""The daemon's half of operating-system updates: HQ's retained announcements on
``{root}/os/chain`` and ``{root}/os/store/{store}`` (an update staged to this box's store first)
are checked, the newest one's bundle fetched and left for the root installer
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
    Superseded,
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
    the newest announcement wins: from either topic (the store's staged one, the chain's), one
    issued no later than the one already left for the installer is passed over, and one issued
    before the release installed last is no fault (a staged store runs ahead of the chain)."""

    def __init__(self, trust: TrustStore, state_dir: Path, report: Report,
                 compatible: str = COMPATIBLE,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.trust, self.state_dir, self.report = trust, state_dir, report
        self.compatible, self.now = compatible, now
        self.ready = state_dir / "updates/os-ready"
        self._lock = asyncio.Lock()
        self.fetched: str | None = None  # the version last left for the installer
        self.fetched_issued: datetime | None = None  # and its issue time

    async def handle(self, message: Message) -> None:
        if not message.payload:
            return  # HQ withdrew the announcement
        async with self._lock:
            try:
                release = await asyncio.to_thread(check, message.payload, self.trust,
                                                  self.state_dir, self.now(), self.compatible)
                if self.fetched_issued is not None and release.issued_at <= self.fetched_issued:
                    # Left for the installer already (a reconnect re-delivers it), or older than
                    # what was (the chain's, after the store's staged one).
                    log.info("OS release %s on %s: not newer than %s, fetched already",
                             release.version, message.topic, self.fetched)
                    return
                log.info("OS release %s announced: fetching %s", release.version, release.url)
                bundle = await asyncio.to_thread(fetch, release,
                                                 self.state_dir / "updates/os-fetch")
                await asyncio.to_thread(leave_ready, message.payload, bundle, self.ready)
            except (AlreadyInstalled, Superseded) as exc:
                log.info("%s: %s", message.topic, exc)
                return
            except OsUpdateError as exc:
                await self.report("os_release", "refused", str(exc), message.topic)
                return
            self.fetched, self.fetched_issued = release.version, release.issued_at
            log.info("OS release %s fetched for the installer", release.version)
