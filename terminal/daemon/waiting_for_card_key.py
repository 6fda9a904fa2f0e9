"""A box provisioned without the chain's card key: `posterm run` waits for it, READY.

Every member's card number is kept only as a hash keyed with the chain's card key, so neither the
till nor the store of HQ's rules bundle can open without it. Before this wait a box provisioned
without it (no ``card_key`` in the provisioning file's ``[hq]``) waited for HQ's rules, failed
on the missing key the moment the bundle came, exited, and systemd started it again into the same
failure: a restart loop that said nothing useful, and an A/B boot check that gave up on the slot.
Now the daemon is READY and says what is missing and how to give it (STATUS=, the journal, the
pole display, the LCD) and goes on once the key is there, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from terminal.daemon.config import Config

if TYPE_CHECKING:
    from terminal.core.systemd import Notifier

log = logging.getLogger(__name__)

NO_KEY_POLE = {"zh": ("缺少会员卡密钥", "NO CARD KEY"),
               "en": ("NO CARD KEY", "PROVISION AGAIN")}
NO_KEY_LCD = {"zh": "缺少会员卡密钥，请重新配置 · No card key: provision again",
              "en": "No card key: provision this box again ([hq] card_key)"}
NO_KEY_STATUS = "no card key: not selling, not taking HQ's rules"
CHECK_SECONDS = 2.0  # how often the key file is looked at again


def card_key_problem(config: Config) -> str | None:
    """Why the configured card key cannot be used (missing, unreadable, too short), or None."""
    from terminal.daemon.bootstrap import StartupError, read_card_key

    try:
        read_card_key(config.card_key_file)
    except StartupError as exc:
        return str(exc)
    return None


async def wait_for_card_key(config: Config, notifier: Notifier, stop: asyncio.Event) -> bool:
    """True at once when the card key is usable; else READY, saying so, until it is (True) or
    ``stop`` is set (False)."""
    problem = card_key_problem(config)
    if problem is None:
        return True
    from terminal.daemon.waiting_screens import WaitingScreens

    status = (f"{NO_KEY_STATUS} ({problem}): provision the box again with the chain's card key "
              "([hq] card_key in posterm-provision.toml, as posterm-hq enroll template writes it)")
    log.error("%s; the box goes on once %s is there, no restart needed", status,
              config.card_key_file)
    async with WaitingScreens(config, notifier) as screens:
        notifier.ready(status)
        await screens.show(NO_KEY_POLE, status, NO_KEY_LCD)
        while (problem := card_key_problem(config)) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
            if stop.is_set():
                return False
    log.info("card key: %s is there now; going on", config.card_key_file)
    return True
