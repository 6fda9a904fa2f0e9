"""`posterm doctor`: check the store hardware and say plainly what works, with the fix to try.

It reads the daemon's own config: the provisioned one (``/var/lib/posterm/posterm.toml``) by
default, or ``--config FILE``; through the daemon's parser, so it checks exactly the devices the
daemon opens (the LCD only with an ``[lcd]`` section, the drawer only when enabled, the inputs
configured). A file of device sections alone (``[printer]``, ``[pole]`` ...) is read too, and with
neither the default devices are checked. ``--simulate`` runs every driver on its simulated
back-end (no hardware needed). At the end it prints the status page the box prints, with what it
found, and keeps its preview (drawn from the bytes sent) beside the test page's.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.core.configfile import ConfigError, load_section, load_toml, section_from

# The daemon's config as provisioning writes it (terminal.field.provision's STATE_DIR/CONFIG_NAME).
PROVISIONED = Path("/var/lib/posterm/posterm.toml")
DEVICE_SECTIONS = {"printer", "drawer", "pole", "lcd", "input"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="the daemon's config (default: the "
                        f"provisioned {PROVISIONED}), or a file of device sections alone")
    parser.add_argument("--simulate", action="store_true",
                        help="use the simulated back-ends of every device")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the test page and LCD previews (default: a temp folder)")


class Report:
    def __init__(self) -> None:
        self.failures = 0
        self.devices: dict[str, str] = {}  # device -> "ok" or what is wrong: the status page's

    def ok(self, device: str, what: str) -> None:
        self.devices.setdefault(device, "ok")
        print(f"  OK    {device:8} {what}")

    def fail(self, device: str, what: str, fix: str) -> None:
        self.failures += 1
        self.devices[device] = "FAIL: see report"  # fits the page's column
        print(f"  FAIL  {device:8} {what}\n        fix: {fix}")

    def note(self, device: str, what: str) -> None:
        print(f"  --    {device:8} {what}")

    @contextlib.contextmanager
    def check(self, device: str, fix: str) -> Iterator[None]:
        try:
            yield
        except (OSError, ValueError) as exc:  # a device error is a finding, not a crash
            self.fail(device, str(exc), fix)


def run(args: argparse.Namespace) -> int:
    path = args.config
    if path is None and PROVISIONED.is_file():
        path = PROVISIONED
    try:
        sections = _load_sections(path, args.simulate)
    except ConfigError as exc:
        print(f"posterm doctor: {exc}")
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="posterm-doctor-"))
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    print(f"posterm doctor ({'simulated devices' if args.simulate else 'store hardware'}; "
          f"{sections['source']})")
    steps: list[Callable[[dict[str, Any], Report, Path], None]] = [
        _check_inputs, _check_printer, _check_pole, _check_lcd, _print_status_page,
    ]
    for step in steps:
        step(sections, report, out)
    verdict = "everything works" if not report.failures else f"{report.failures} problem(s)"
    print(f"result: {verdict}; previews in {out}")
    return 0 if not report.failures else 1


def _load_sections(path: Path | None, simulate: bool) -> dict[str, Any]:
    data = load_toml(path) if path else {}
    if "terminal" in data:
        sections = _daemon_sections(data, str(path))
    else:
        sections = _device_sections(data, str(path) if path else "")
    if simulate:
        sections["printer"] = replace(sections["printer"], backend="dummy")
        sections["pole"] = replace(sections["pole"], backend="pty")
        if sections["lcd"] is not None:
            sections["lcd"] = replace(sections["lcd"], backend="dummy")
        sections["inputs"] = {n: replace(c, backend="simulated")
                              for n, c in sections["inputs"].items()}
    return sections


def _daemon_sections(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The devices of the daemon's config, read by the daemon's own parser: what it opens."""
    from terminal.daemon.config import parse_config

    config = parse_config(data, source)
    broker = f"{config.broker.host}:{config.broker.port}" if config.broker else ""
    return {
        "source": f"the daemon's config {source}",
        "printer": config.printer,
        "drawer": config.drawer if config.drawer.enabled else None,
        "pole": config.pole,
        "lcd": config.lcd,
        "inputs": dict(config.inputs),
        "terminal": (config.terminal.store, config.terminal.terminal_id, broker),
    }


def _device_sections(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Device sections alone (a technician's test file), or the default devices."""
    from terminal.drivers.drawer import DrawerConfig
    from terminal.drivers.input import InputDeviceConfig
    from terminal.drivers.lcd import LcdConfig
    from terminal.drivers.pole import PoleConfig
    from terminal.drivers.printer import PrinterConfig

    unknown = set(data) - DEVICE_SECTIONS
    if unknown:
        raise ConfigError(f"{source}: no [terminal] section, so a file of device sections; but "
                          f"it has {sorted(unknown)}")
    name = source or "defaults"
    inputs_table = data.get("input", {})
    inputs = {key: load_section(InputDeviceConfig, table, f"{name} [input.{key}]")
              for key, table in inputs_table.items()}
    return {
        "source": f"device sections of {source}" if source else
                  f"no config at {PROVISIONED}: the default devices",
        "printer": section_from(data, "printer", PrinterConfig, name),
        "drawer": section_from(data, "drawer", DrawerConfig, name),
        "pole": section_from(data, "pole", PoleConfig, name),
        "lcd": section_from(data, "lcd", LcdConfig, name),
        "inputs": inputs or {"reader": InputDeviceConfig(role="msr"),
                             "keypad": InputDeviceConfig(role="keypad")},
        "terminal": ("-", "-", ""),
    }


def _check_inputs(sections: dict[str, Any], report: Report, out: Path) -> None:
    from terminal.drivers.input import InputPort, device_matches, guess_role, list_input_devices
    from terminal.drivers.keys import events_for_keys, events_for_text
    from terminal.drivers.msr import InputRefused, parse_swipe

    seen = list_input_devices()
    if not seen:
        report.note("input", "no input devices visible (/dev/input empty or missing)")
    for device in seen:
        claimed = [name for name, c in sections["inputs"].items()
                   if c.backend == "evdev" and c.match and device_matches(c.match, device)]
        role = f"configured as {', '.join(claimed)}" if claimed else (
            f"would suit role {guess_role(device.name, [])}" if guess_role(device.name, [])
            else "no role")
        report.note("input", f"{device.stable_path or device.path}: {device.name!r} "
                             f"{device.vendor:04x}:{device.product:04x}, {role}")
    for name, config in sections["inputs"].items():
        if config.backend == "evdev":
            found = [d for d in seen if device_matches(config.match, d)]
            if found:
                report.ok(name, f"{config.role} found at {found[0].stable_path or found[0].path}")
            else:
                report.fail(name, f"{config.role} {config.match!r} not found",
                            "plug it in; check `ls -l /dev/input/by-id` and that the posterm "
                            "user is in group input (udev rule in systemd/)")
            continue
        got: list[Any] = []
        port = InputPort(config, lambda _role, item, got=got: got.append(item))
        if config.role == "keypad":
            port.inject(events_for_keys(["KEY_F1", "KEY_KP1", "KEY_KPENTER"]))
            ok = got == ["member", "digit_1", "enter"]
            detail = f"simulated keys -> actions {got}"
        else:
            port.inject(events_for_text(";8000123456=3012101?\n" if config.role == "msr"
                                        else "6901234567892\n"))
            try:
                ok = bool(got) and (config.role != "msr" or
                                    parse_swipe(got[0].text).number == "8000123456")
            except InputRefused:
                ok = False
            detail = f"simulated {config.role} input decoded ({got[0].kind if got else 'nothing'})"
        if ok:
            report.ok(name, detail)
        else:
            report.fail(name, detail, "the key decoding is broken: run the driver tests")


def _check_printer(sections: dict[str, Any], report: Report, out: Path) -> None:
    from terminal.drivers.document import Document
    from terminal.drivers.drawer import CashDrawer
    from terminal.drivers.escpos_paper import preview
    from terminal.drivers.printer import open_printer

    config = sections["printer"]
    printer = open_printer(config)
    if not printer.start():
        report.fail("printer", printer.last_error, printer.fix_hint())
        return
    try:
        status = printer.status()
        if status.online is None:
            report.note("printer", f"status not available: {status.detail}")
        elif status.online and status.paper != "out":
            report.ok("printer", f"online, paper {status.paper}")
        else:
            report.fail("printer", status.detail, printer.fix_hint())
        page = (Document().title("posterm 测试页").line(f"{config.backend} {config.paper_mm} mm "
                f"{config.encoding}").separator().columns("中文 Chinese", "12.50")
                .columns("ASCII 0123456789", "0.05").barcode("6901234567892").feed(2).cut())
        result = printer.print_document(page)
        png = preview(printer.render(page), printer.paper_dots).save_png(out / "test-page.png")
        if result.printed:
            report.ok("printer", f"test page printed (preview {png})")
        else:
            report.fail("printer", result.message, printer.fix_hint())
        if sections["drawer"] is None:
            report.note("drawer", "not enabled in [drawer]: the daemon opens none")
            return
        drawer = CashDrawer(sections["drawer"], printer)
        with report.check("drawer", "check the drawer cable is in the printer's DK port and "
                                    "[drawer] pin (2 or 5) matches the drawer"):
            drawer.kick()
            report.ok("drawer", f"kicked on pin {drawer.config.pin} for "
                                f"{drawer.config.pulse_ms} ms (listen for the click)")
    finally:
        printer.close()


def _check_pole(sections: dict[str, Any], report: Report, out: Path) -> None:
    from terminal.drivers.pole import open_pole

    config = sections["pole"]
    display = open_pole(config)
    fix = (f"check {config.port} exists (ls /dev/serial/by-id), the baud rate ({config.baudrate}) "
           f"and command set ({config.command_set}) in the display's DIP switches")
    with report.check("pole", fix):
        display.start()
        display.show("0123456789ABCDEFGHIJ", "posterm 测试 OK")
        if display.simulator is not None:
            lines = display.simulator.lines
            report.ok("pole", f"simulated display shows {lines[0]!r} / {lines[1]!r}")
        else:
            report.ok("pole", "test pattern sent: the display should read 0-9 A-J / posterm ** OK")
    display.close()


def _check_lcd(sections: dict[str, Any], report: Report, out: Path) -> None:
    from terminal.drivers.fonts import FontMissing
    from terminal.drivers.lcd import LcdFrame, open_lcd

    config = sections["lcd"]
    if config is None:
        report.note("lcd", "no [lcd] section: the daemon opens no LCD")
        return
    lcd = open_lcd(config)
    try:
        lcd.start()
        lcd.show(LcdFrame("测试 Test", "金卡 Gold", 1234, "posterm doctor"))
        path = lcd.save_png(out / "lcd.png")
        report.ok("lcd", f"{config.backend} {config.width}x{config.height} frame drawn ({path})")
        lcd.close()
    except FontMissing as exc:
        report.fail("lcd", "no CJK font", str(exc).split("; ", 1)[1])
    except (OSError, ImportError, RuntimeError) as exc:  # SPI/GPIO missing or not permitted
        report.fail("lcd", f"{config.backend}: {exc}",
                    "enable SPI (raspi-config), check the wiring and [lcd] gpio_dc/gpio_rst, and "
                    "that the posterm user is in groups spi and gpio")


def _print_status_page(sections: dict[str, Any], report: Report, out: Path) -> None:
    """The status page the box prints (after provisioning, on HQ's command), with what doctor
    found; its preview is drawn from the bytes the printer is sent."""
    from terminal.app.status_page import status_page
    from terminal.drivers.document import render_text
    from terminal.drivers.escpos_paper import preview
    from terminal.drivers.printer import open_printer

    store, terminal, broker = sections["terminal"]
    page = status_page(store, terminal, 0, report.devices, datetime.now().astimezone(), broker)
    printer = open_printer(sections["printer"])
    try:
        png = preview(printer.render(page), printer.paper_dots).save_png(out / "status-page.png")
        (out / "status-page.txt").write_text(render_text(page, printer.config.width_chars),
                                             encoding="utf-8")
        result = printer.print_document(page) if printer.start() else None
        if result is not None and result.printed:
            report.note("status", f"status page printed (preview {png})")
        else:
            why = result.message if result is not None else printer.last_error
            report.note("status", f"status page not printed ({why}); preview {png}")
    finally:
        printer.close()
