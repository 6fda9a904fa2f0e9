"""The composition root: configuration in, a working terminal out.

Everything the daemon, the simulation, ``posterm replay``'s device steps and the tests run is
wired here and only here; tests pass their own clock, HQ link or ledger to the same functions.
Nothing touches hardware until :func:`build` starts it.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from terminal import __version__
from terminal.app.device_notices import DeviceNotices
from terminal.app.flow import Till, TillSetup
from terminal.app.hqlink import HqLink, Standalone
from terminal.app.inputs import TillInputs, WatchedPort
from terminal.app.ledger import Clock, LedgerGateway
from terminal.app.printing import ReceiptDesk
from terminal.app.screens import Displays
from terminal.app.status_page import status_page
from terminal.core.configfile import ConfigError
from terminal.daemon.config import Config
from terminal.daemon.keys import StartupError, read_card_key, read_pin_key
from terminal.drivers.drawer import open_drawer
from terminal.drivers.input import InputPort
from terminal.drivers.lcd import Lcd, open_lcd
from terminal.drivers.pole import PoleDisplay, open_pole
from terminal.drivers.printer import open_printer
from terminal.field.ledger_guard import recorder
from terminal.loyalty.errors import Refused
from terminal.loyalty.rules import Rules, load_rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.database import Record
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.operators import SignedIn, SignInRefused
from terminal.sync.bundle_store import seed_catalogue

log = logging.getLogger(__name__)

# systemd-timesyncd creates this file once the clock has been synchronised (DESIGN promise 6).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class RulesNotYet(StartupError):
    """No rules file and no held bundle, but a link to HQ: the daemon waits for HQ's bundle."""


def system_clock(zone: ZoneInfo, trust: Callable[[], bool] = TIMESYNC_FLAG.exists) -> Clock:
    """The wall clock in the programme's zone, trusted once NTP has synchronised it."""
    def now() -> tuple[datetime, bool]:
        return datetime.now(zone), trust()
    return now


@dataclass
class Terminal:
    """The running parts. ``close`` releases them in reverse order of start."""

    config: Config
    rules: Rules
    ledger: LedgerGateway
    link: HqLink
    till: Till
    inputs: TillInputs
    displays: Displays
    desk: ReceiptDesk
    pole: PoleDisplay | None
    lcd: Lcd | None
    ports: dict[str, InputPort] = field(default_factory=dict)
    notices: DeviceNotices | None = None

    def port(self, role: str) -> InputPort:
        for port in self.ports.values():
            if port.config.role == role:
                return port
        raise KeyError(f"no input device with role {role!r} is configured")

    async def close(self) -> None:
        for port in self.ports.values():
            port.close()
        await self.inputs.stop(timeout=15)
        await self.till.settle()
        if self.notices is not None:
            await self.notices.close()
        await self.link.stop()
        await self.desk.close()
        for device in (self.pole, self.lcd):
            if device is not None:
                await device.aclose()
        await self.ledger.close()


def read_catalogue(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise StartupError(f"{path}: cannot read the catalogue: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StartupError(f"{path}: not valid TOML: {exc}") from None
    products = data.get("product", [])
    if set(data) - {"product"} or not isinstance(products, list):
        raise StartupError(f"{path}: a catalogue is a list of [[product]] tables")
    return products


def ledger_recorder(config: Config) -> Record:
    """The ledger's schema numbers for the update agent, in the state directory, written before
    any migration runs (docs/field.md section 5)."""
    return recorder(Path(config.paths.state_dir))


async def open_ledger(config: Config, rules: Rules, clock: Clock) -> LedgerGateway:
    key = read_card_key(config.card_key_file)
    pin_key = read_pin_key(config.pin_key_file)
    identity = Identity(config.terminal.store, config.terminal.terminal_id)
    # The ledger's one thread: the till and the HQ link both run their ledger calls on it.
    ledger = await LedgerGateway.open(
        lambda: LedgerStore.open(config.database, rules, key, identity,
                                 record=ledger_recorder(config)), clock, pin_key,
        LedgerThread(name="ledger"))
    try:
        await ledger.executor.run(ledger.store.check_pin_key, pin_key)
    except SignInRefused as exc:
        await ledger.close()
        raise StartupError(f"{config.pin_key_file}: {exc}") from None
    if config.loyalty.catalogue_file:
        items = read_catalogue(Path(config.loyalty.catalogue_file))
        try:
            count = await ledger.executor.run(seed_catalogue, ledger.store.db, items)
        except Refused as exc:
            await ledger.close()
            raise StartupError(f"{config.loyalty.catalogue_file}: {exc}") from None
        if count is None:
            log.info("catalogue: kept (%s seeds only a till with no catalogue and no bundle)",
                     config.loyalty.catalogue_file)
        else:
            log.info("catalogue: %d products seeded from %s", count,
                     config.loyalty.catalogue_file)
    return ledger


async def assemble(config: Config, rules: Rules, ledger: LedgerGateway, link: HqLink | None,
                   operator: SignedIn | None = None) -> Terminal:
    """Start the devices and wire the till to them and to ``ledger`` and ``link``."""
    # A display or printer missing at start is reported and retried: selling does not wait.
    # The cashier is told of a display or input device that goes or returns (also at start).
    pole = open_pole(config.pole)
    lcd = open_lcd(config.lcd) if config.lcd is not None else None
    displays = Displays(pole, lcd)
    notices = DeviceNotices(displays)
    notices.watch_displays()
    await pole.connect()
    if lcd is not None:
        await lcd.connect()
    printer = open_printer(config.printer)
    drawer = open_drawer(config.drawer, printer) if config.drawer.enabled else None
    desk = ReceiptDesk(printer, drawer, config.receipts_dir, png=config.loyalty.receipt_png)
    await desk.start()
    setup = TillSetup(config.terminal.store, config.terminal.terminal_id,
                      config.loyalty.departments)
    ports: dict[str, InputPort] = {}
    link = link or hq_link(config, ledger, desk, displays, ports)
    till = Till(ledger, displays, desk, link, rules, setup, operator)
    if hasattr(link, "on_rules"):  # the MQTT link: a bundle put in force reaches the till too
        link.on_rules = lambda new: setattr(till, "rules", new)
    inputs = TillInputs(till)
    terminal = Terminal(config, rules, ledger, link, till, inputs, displays, desk, pole, lcd,
                        ports, notices)
    # HQ's retained status names the absent device now, not at the next status for another reason.
    notices.on_change.append(lambda: notices.later(link.publish_status()))
    for name, device in config.inputs.items():
        port = WatchedPort(device, inputs.on_input, lambda port, present, name=name:
                           notices.changed(name, port.config.role, present))
        port.start()
        terminal.ports[name] = port
    inputs.start()
    await link.start()
    await till.start()
    return terminal


def device_health(desk: ReceiptDesk, displays: Displays,
                  ports: dict[str, InputPort]) -> dict[str, str]:
    """What the status topic reports of the hardware, without touching it (no blocking I/O)."""
    health = {"printer": desk.health, **displays.health()}
    for name, port in ports.items():
        health[name] = "present" if port.present else "absent"
    return health


async def print_status_page(config: Config, ledger: LedgerGateway, desk: ReceiptDesk,
                            displays: Displays, ports: dict[str, InputPort],
                            rule_version: int = 0) -> None:
    """The status page: on HQ's `print_status` command, and once after provisioning."""
    at, _trusted = ledger.clock()
    broker = f"{config.broker.host}:{config.broker.port}" if config.broker else ""
    page = status_page(config.terminal.store, config.terminal.terminal_id, rule_version,
                       device_health(desk, displays, ports), at, broker)
    await desk.print(page, "status")


def hq_link(config: Config, ledger: LedgerGateway, desk: ReceiptDesk, displays: Displays,
            ports: dict[str, InputPort]) -> HqLink:
    """The MQTT link when ``[broker]`` and ``[hq]`` are configured, else the standalone ledger."""
    if config.broker is None or config.hq is None:
        return Standalone()
    from terminal.sync.link import MqttHqLink  # paho and the crypto stack only when used

    broker = config.broker
    printing: set[asyncio.Task[Any]] = set()

    def print_status() -> None:
        task = asyncio.get_running_loop().create_task(
            print_status_page(config, ledger, desk, displays, ports, link.rule_version))
        printing.add(task)  # keep a reference until it is done
        task.add_done_callback(printing.discard)

    link = MqttHqLink(
        ledger.store, ledger.executor,
        host=broker.host, port=broker.port, ca=Path(broker.ca_file),
        cert=Path(broker.cert_file), key=Path(broker.key_file),
        root_keys=[Path(config.hq.root_public_key_file)],
        revoked_keys=config.hq.revoked_keys, topic_root=broker.topic_root,
        request_timeout=broker.request_timeout,
        software_version=__version__,
        device_health=lambda: device_health(desk, displays, ports),
        printer_state=lambda: desk.printer_state,
        print_status=print_status,
        clock_trusted=lambda: ledger.clock()[1],
        state_dir=Path(config.paths.state_dir),
    )
    return link


def held_rules(config: Config) -> Rules | None:
    """The rules of the signed bundle the terminal holds (the narrowest scope), or None."""
    if config.broker is None or not config.database.exists():
        return None
    from terminal.loyalty.store.database import open_database
    from terminal.protocol.topics import Topics
    from terminal.sync.bundle_store import BadPayload, effective

    db = open_database(config.database, ledger_recorder(config))
    try:
        found = effective(Topics(config.broker.topic_root).scopes_for(config.terminal.store))
    except BadPayload as exc:  # held by an older release, no longer parsed by this one
        log.warning("the held bundle's rules are not usable here: %s", exc)
        return None
    finally:
        db.close()
    if found is not None:
        log.info("rules: HQ's %s bundle v%d, held", found.scope, found.version)
    return found.rules if found is not None else None


def startup_rules(config: Config) -> Rules:
    """The rules the till starts with: its held bundle's when it holds one, else the rules
    file; a box linked to HQ with neither raises RulesNotYet (the daemon waits for HQ's)."""
    rules = held_rules(config)
    if rules is not None:
        return rules
    linked = config.broker is not None and config.hq is not None
    if linked and not config.rules_file.exists():
        raise RulesNotYet(f"{config.source}: no rules yet: no {config.rules_file} and no "
                          "bundle from HQ held")
    try:
        return load_rules(config.rules_file)
    except (OSError, ValueError) as exc:
        raise StartupError(f"{config.source}: rules {config.rules_file}: {exc}") from None


def keep_first_bundles(config: Config, bundles: list[Any], trust: Any,
                       clock_trusted: bool) -> None:
    """Store HQ's first verified bundles (terminal.sync.first_bundle, broadest scope first) in
    the ledger as any bundle is (``bundle_store.receive``: verified again, catalogue loaded, the
    version kept), so that this and every later start takes its rules from the held bundle.
    Raises StartupError (a card key missing) or BundleRejected, having kept nothing more."""
    from terminal.protocol.topics import Topics
    from terminal.sync.bundle_store import receive

    assert config.broker is not None
    scopes = Topics(config.broker.topic_root).scopes_for(config.terminal.store)
    key = read_card_key(config.card_key_file)
    identity = Identity(config.terminal.store, config.terminal.terminal_id)
    store = LedgerStore.open(config.database, bundles[-1].rules, key, identity,
                             new_session=False, record=ledger_recorder(config))
    try:
        for found in bundles:
            receive(store, found.wire, found.scope, trust, scopes, clock_trusted)
    finally:
        store.close()


async def build(config: Config, link: HqLink | None = None, clock: Clock | None = None,
                operator: SignedIn | None = None,
                prepare: Callable[[LedgerGateway], Awaitable[None]] | None = None) -> Terminal:
    """The whole terminal from ``config``: rules, ledger, devices, HQ link and till.

    ``link`` is the one way HQ comes in (``terminal.sync``'s MQTT link, or None for the
    standalone ledger). ``prepare(ledger)`` runs once the ledger is open, before any device.
    """
    rules = startup_rules(config)
    if not config.inputs:
        raise ConfigError(f"{config.source}: no [input.NAME] section: the till needs a keypad")
    ledger = await open_ledger(config, rules, clock or system_clock(rules.zone))
    try:
        if prepare is not None:
            await prepare(ledger)
        return await assemble(config, rules, ledger, link, operator)
    except BaseException:
        await ledger.close()
        raise
