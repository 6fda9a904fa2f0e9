"""A box linked to HQ with no rules yet: `posterm run` waits for HQ's signed bundle.

A box provisioned as docs/field.md says has no rules file; its rules come in HQ's signed bundle.
Until it holds one the daemon is READY and says what it waits for (systemd's STATUS=, the pole,
the LCD), takes HQ's retained bundle (:mod:`terminal.sync.first_bundle`, verified with the
provisioned root key) into the ledger, and then the till is built (:func:`run.serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.daemon.config import Config

if TYPE_CHECKING:
    from terminal.core.systemd import Notifier
    from terminal.daemon.waiting_screens import WaitingScreens

log = logging.getLogger(__name__)


WAITING_POLE = {"zh": ("等待总部规则", "WAITING FOR HQ RULES"),
                "en": ("WAITING FOR HQ RULES", "NOT SELLING YET")}
REFUSED_POLE = {"zh": ("总部规则被拒绝", "HQ RULES REFUSED"),
                "en": ("HQ RULES REFUSED", "STILL WAITING")}
WAITING_LCD = {"zh": "等待总部规则，暂不能销售 · Waiting for HQ's rules",
               "en": "Waiting for HQ's rules: not selling yet"}
WAITING_STATUS = "waiting for HQ's rules (no rules file, no bundle held): not selling yet"
RETRY_SECONDS = 30.0  # after a verified bundle the ledger would not keep (its catalogue, say)


async def wait_for_rules(config: Config, notifier: Notifier, stop: asyncio.Event) -> bool:
    """A box linked to HQ with no rules yet: tell systemd (READY=1, the wait in STATUS=) and
    the pole and LCD, connect, and take HQ's retained bundle, verified with the provisioned root
    key by the bundles' own code, into the ledger. True once a bundle is held (the till can be
    built), False when stopped first. A refused bundle is logged and shown; the box waits on.

    READY while waiting: the daemon is up and doing what its state allows, as a box that is not
    provisioned yet is (docs/field.md, "Ready"); the A/B boot check's READY means "the new slot
    runs posterm as far as the box's own data lets it", not "selling"."""
    from terminal.daemon.waiting_screens import WaitingScreens

    loop = asyncio.get_running_loop()
    shown: set[asyncio.Task[None]] = set()
    async with WaitingScreens(config, notifier) as screens:

        def refused(reason: str, detail: str) -> None:
            status = f"HQ's rules bundle refused ({reason}: {detail[:200]}); still waiting"
            prompt = {"zh": f"总部规则被拒绝 · HQ's rules refused: {reason}",
                      "en": f"HQ's rules refused: {reason}; still waiting"}
            task = loop.create_task(screens.show(REFUSED_POLE, status, prompt))
            shown.add(task)  # keep a reference until it is done
            task.add_done_callback(shown.discard)

        async def linked() -> None:
            # Connected to HQ's broker under this box's certificate and subscribed: as far as
            # this release can go without rules, so an application update on trial is kept
            # (terminal.field.update; the till's own mark is confirm_release, after the link).
            from terminal.daemon.run import mark_release_healthy

            await mark_release_healthy(Path(config.paths.state_dir), "linked to HQ's broker, "
                                       "waiting for its rules")

        notifier.ready(WAITING_STATUS)
        await screens.show(WAITING_POLE, WAITING_STATUS, WAITING_LCD)
        return await _wait(config, screens, refused, linked, stop)


async def _wait(config: Config, screens: WaitingScreens, refused: Callable[[str, str], None],
                linked: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
    from terminal.daemon.bootstrap import TIMESYNC_FLAG, keep_first_bundles
    from terminal.protocol.bundle import BundleRejected
    from terminal.protocol.mqtt import TlsFiles
    from terminal.sync.bundle_store import trust_store
    from terminal.sync.first_bundle import BrokerAccess, await_first_bundles

    assert config.broker is not None and config.hq is not None
    broker, hq = config.broker, config.hq
    trust = trust_store([Path(hq.root_public_key_file)], hq.revoked_keys)
    access = BrokerAccess(broker.host, broker.port,
                          TlsFiles(Path(broker.ca_file), Path(broker.cert_file),
                                   Path(broker.key_file)),
                          f"{config.terminal.store}-{config.terminal.terminal_id}-rules",
                          broker.topic_root)

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    said = ""
    while not stop.is_set():
        if not access.tls.cert.exists():
            # Provisioned offline without a certificate: the request waits for HQ's signature
            # (docs/field.md, section 2); `posterm provision` installs it when it comes.
            status = (f"{WAITING_STATUS}; no certificate yet ({access.tls.cert}): HQ signs "
                      "the request this box left on the boot partition (posterm-hq ca sign)")
            if status != said:
                log.warning("%s", status)
                await screens.show(WAITING_POLE, status, WAITING_LCD)
                said = status
            await pause(5.0)
            continue
        try:
            bundles = await await_first_bundles(
                access, config.terminal.store, trust,
                clock_trusted=TIMESYNC_FLAG.exists, on_refused=refused, on_linked=linked,
                stop=stop)
        except (OSError, ssl.SSLError, ValueError) as exc:
            status = f"{WAITING_STATUS}; cannot use this terminal's credentials: {exc}"
            log.error("%s; trying again in %.0f s", status, RETRY_SECONDS)
            await screens.show(REFUSED_POLE, status, WAITING_LCD)
            await pause(RETRY_SECONDS)
            continue
        if not bundles:
            return False
        try:
            await asyncio.to_thread(keep_first_bundles, config, bundles, trust,
                                    TIMESYNC_FLAG.exists())
        except BundleRejected as exc:
            log.error("HQ's rules bundle not kept (%s): %s; trying again in %.0f s",
                      exc.reason_code, exc.message, RETRY_SECONDS)
            refused(exc.reason_code, exc.message)
            await pause(RETRY_SECONDS)
            continue
        newest = bundles[-1]
        log.info("rules: HQ's %s bundle v%d kept; starting the till", newest.scope,
                 newest.version)
        return True
    return False
