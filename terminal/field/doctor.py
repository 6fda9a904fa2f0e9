"""`posterm doctor`: check the store hardware and say plainly what works, with the fix to try.

Run with ``--simulate`` to exercise every driver on its simulated back-end (no hardware needed),
or with ``--config posterm.toml`` to check the devices that file describes.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from terminal.core.configfile import ConfigError, load_section, load_toml, section_from


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file with [printer], [drawer], [pole], "
                        "[lcd] and [input.NAME] sections")
    parser.add_argument("--simulate", action="store_true",
                        help="use the simulated back-ends of every device")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the test page and LCD previews (default: a temp folder)")


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, device: str, what: str) -> None:
        print(f"  OK    {device:8} {what}")

    def fail(self, device: str, what: str, fix: str) -> None:
        self.failures += 1
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
    try:
        sections = _load_sections(args.config, args.simulate)
    except ConfigError as exc:
        print(f"posterm doctor: {exc}")
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="posterm-doctor-"))
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    print(f"posterm doctor ({'simulated devices' if args.simulate else 'store hardware'})")
    steps: list[Callable[[dict[str, Any], Report, Path], None]] = [
        _check_inputs, _check_printer, _check_pole, _check_lcd,
    ]
    for step in steps:
        step(sections, report, out)
    verdict = "everything works" if not report.failures else f"{report.failures} problem(s)"
    print(f"result: {verdict}; previews in {out}")
    return 0 if not report.failures else 1


def _load_sections(path: Path | None, simulate: bool) -> dict[str, Any]:
    from terminal.drivers.drawer import DrawerConfig
    from terminal.drivers.input import InputDeviceConfig
    from terminal.drivers.lcd import LcdConfig
    from terminal.drivers.pole import PoleConfig
    from terminal.drivers.printer import PrinterConfig

    data = load_toml(path) if path else {}
    source = str(path) if path else "defaults"
    unknown = set(data) - {"printer", "drawer", "pole", "lcd", "input"}
    if unknown:
        raise ConfigError(f"{source}: doctor reads no section {sorted(unknown)}")
    inputs_table = data.get("input", {})
    inputs = {name: load_section(InputDeviceConfig, table, f"{source} [input.{name}]")
              for name, table in inputs_table.items()}
    sections: dict[str, Any] = {
        "printer": section_from(data, "printer", PrinterConfig, source),
        "drawer": section_from(data, "drawer", DrawerConfig, source),
        "pole": section_from(data, "pole", PoleConfig, source),
        "lcd": section_from(data, "lcd", LcdConfig, source),
        "inputs": inputs or {"reader": InputDeviceConfig(role="msr"),
                             "keypad": InputDeviceConfig(role="keypad")},
    }
    if simulate:
        sections["printer"] = replace(sections["printer"], backend="dummy")
        sections["pole"] = replace(sections["pole"], backend="pty")
        sections["lcd"] = replace(sections["lcd"], backend="dummy")
        sections["inputs"] = {n: replace(c, backend="simulated")
                              for n, c in sections["inputs"].items()}
    return sections


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
