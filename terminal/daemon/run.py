"""`posterm run`: the terminal daemon (``--config FILE``), or its simulation (``--simulate``).

Logs go to stderr only (journald keeps them; nothing is written to the SD card). SIGTERM and
SIGINT let the input being handled finish (a sale being committed completes and its receipt is
queued), then every device is released and the process exits with 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.core.configfile import ConfigError
from terminal.daemon.config import Config, load_config

if TYPE_CHECKING:  # the drivers load only when the daemon really starts
    from terminal.app.flow import Till
    from terminal.app.hqlink import HqLink
    from terminal.app.ledger import Clock, LedgerGateway
    from terminal.core.systemd import Notifier
    from terminal.daemon.bootstrap import Terminal

log = logging.getLogger("posterm")

STATUS_SECONDS = 0.5  # how often STATUS= follows what the till is doing


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="the daemon's TOML config "
                        "(/var/lib/posterm/posterm.toml as provisioned)")
    parser.add_argument("--simulate", action="store_true",
                        help="simulated hardware in this terminal, demo state in --state-dir")
    parser.add_argument("--state-dir", type=Path, default=Path("var/sim"),
                        help="--simulate: where the demo ledger and receipts live (var/sim)")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def setup_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    if args.simulate:
        from terminal.daemon.sim.console import simulate

        return simulate(args.state_dir, args.config)
    if args.config is None:
        print("posterm run: give --config FILE, or --simulate", file=sys.stderr)
        return 2
    if not args.config.exists():
        return asyncio.run(await_provisioning(args.config))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"posterm run: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config))


async def serve(config: Config, link: HqLink | None = None, clock: Clock | None = None,
                attach: Callable[[Terminal, asyncio.Event], Awaitable[None]] | None = None,
                prepare: Callable[[LedgerGateway], Awaitable[None]] | None = None) -> int:
    """Build the terminal, tell systemd, run until SIGTERM/SIGINT (or ``attach`` returns).

    ``prepare(ledger)`` runs once the ledger is open, before the devices start (the simulation
    seeds its demo state there); ``attach(terminal, stop)`` runs beside the daemon (the
    simulation's console).
    """
    from terminal.core.systemd import Notifier, watchdog_interval, watchdog_loop
    from terminal.daemon.bootstrap import RulesNotYet, StartupError, build
    from terminal.daemon.waiting_for_card_key import wait_for_card_key
    from terminal.daemon.waiting_for_rules import wait_for_rules
    from terminal.loyalty.store import StorageError

    notifier = Notifier.from_environment()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    terminal = None
    try:
        while terminal is None:
            # Without the card key neither the till nor HQ's bundle can be kept: wait for it
            # here, READY and saying so, rather than fail into systemd's restart loop.
            if link is None and not await wait_for_card_key(config, notifier, stop):
                log.info("stopped cleanly while waiting for the card key")
                return 0
            try:
                terminal = await build(config, link, clock, prepare=prepare)
            except RulesNotYet as exc:
                if link is not None:  # a caller's own link: it gives the rules itself
                    raise StartupError(str(exc)) from None
                log.warning("%s: waiting for HQ's rules bundle", exc)
                if not await wait_for_rules(config, notifier, stop):
                    log.info("stopped cleanly while waiting for HQ's rules")
                    return 0
    except (StartupError, ConfigError, StorageError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    finally:
        if terminal is None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            notifier.close()
    tasks = [loop.create_task(_follow_status(terminal.till, notifier), name="status")]
    interval = watchdog_interval()
    if interval is not None:
        tasks.append(loop.create_task(
            watchdog_loop(notifier, interval, terminal.ledger.healthy), name="watchdog"))
    if attach is not None:
        tasks.append(loop.create_task(attach(terminal, stop), name="attach"))
    notifier.ready(f"ready: {terminal.till.status}")
    log.info("terminal %s/%s ready", config.terminal.store, config.terminal.terminal_id)
    tasks.append(loop.create_task(
        confirm_release(terminal, Path(config.paths.state_dir)), name="confirm-release"))
    tasks.append(loop.create_task(first_status_page(terminal), name="status-page"))
    try:
        await stop.wait()
    finally:
        reason = f"stopping: {terminal.till.status}"
        notifier.stopping(reason)
        log.info("%s", reason)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await terminal.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        notifier.close()
    log.info("stopped cleanly")
    return 0


async def _follow_status(till: Till, notifier: Notifier) -> None:
    last = ""
    while True:
        status = till.status
        if status != last:
            notifier.status(status)
            last = status
        await asyncio.sleep(STATUS_SECONDS)


async def confirm_release(terminal: Terminal, state_dir: Path, every: float = 1.0) -> None:
    """Tell the update check this release works: it is ready and, when HQ is configured, it
    reached the broker. Without this mark an update on trial is rolled back (docs/field.md)."""
    while not terminal.link.connected:
        await asyncio.sleep(every)
    await mark_release_healthy(state_dir, "ready")


async def mark_release_healthy(state_dir: Path, why: str) -> None:
    """The mark the update check keeps an application release on trial by (``healthy-VERSION``):
    the till ready and linked, or, on a box waiting for HQ's first rules, READY and linked to
    HQ's broker (terminal.daemon.waiting_for_rules)."""
    from terminal import __version__
    from terminal.field.update import mark_healthy
    from terminal.loyalty.store.database import MIGRATIONS

    try:  # with the highest ledger schema this release runs, for a later rollback to it
        await asyncio.to_thread(mark_healthy, state_dir, __version__, max(MIGRATIONS))
    except OSError as exc:
        log.warning("cannot mark release %s healthy in %s: %s", __version__, state_dir, exc)
        return
    log.info("release %s healthy (%s)", __version__, why)


async def first_status_page(terminal: Terminal) -> None:
    """Freshly provisioned (``posterm provision`` left its marker): print the status page once."""
    from terminal.daemon.bootstrap import print_status_page
    from terminal.field.provision import STATUS_PAGE_MARKER

    marker = Path(terminal.config.paths.state_dir) / STATUS_PAGE_MARKER
    if not marker.exists():
        return
    await print_status_page(terminal.config, terminal.ledger, terminal.desk, terminal.displays,
                            terminal.ports)
    marker.unlink(missing_ok=True)  # printed, or kept by the printer for a reprint


# The stable name `posterm provision` gives the pole display (systemd/udev, generated rules).
PROVISIONED_POLE = Path("/dev/posterm/pole-display")


async def await_provisioning(config_path: Path, every: float = 2.0) -> int:
    """No config yet: say so on the pole display if one is plugged in, tell systemd, and wait.

    When the config appears (``posterm-provision.service`` wrote it) exit with EX_TEMPFAIL, so
    systemd's Restart=on-failure starts the daemon again, now with its config.
    """
    from terminal.core.systemd import Notifier
    from terminal.drivers.pole import PoleConfig, open_pole
    from terminal.field.enroll import waiting_lines

    def pole_text() -> tuple[str, str]:
        return waiting_lines(config_path.parent)

    notifier = Notifier.from_environment()
    message = pole_text()
    log.warning("%s is missing: this terminal is not provisioned; put posterm-provision.toml "
                "on the boot partition or run `posterm provision` (docs/field.md)", config_path)
    pole = None
    if PROVISIONED_POLE.exists():
        pole = open_pole(PoleConfig(backend="serial", port=str(PROVISIONED_POLE)))
        try:
            await pole.connect()
            await pole.update(*message)
        except OSError as exc:
            log.warning("pole display: %s", exc)
    notifier.ready("not provisioned: waiting for " + str(config_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not config_path.exists() and not stop.is_set():
            notifier.watchdog()
            if pole is not None and (latest := pole_text()) != message:
                message = latest  # `posterm provision` recorded a refused enrollment meanwhile
                with contextlib.suppress(OSError):
                    await pole.update(*message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        if pole is not None:
            await pole.aclose()
        notifier.close()
    if stop.is_set():
        return 0
    log.info("%s appeared: restarting with it", config_path)
    return EX_TEMPFAIL


EX_TEMPFAIL = 75
