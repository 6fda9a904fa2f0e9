"""Hardware faults: the printer unplugged or out of paper (before the receipt or in the middle of
it), the pole display and LCD gone, the card reader pulled out and plugged back, in a seeded
random order over many sales. Every sale completes, the cashier is told (the printer's problem
under the change; a display or the reader gone, and back, on the display that still works), every
receipt that did not print is kept and can be reprinted once the printer is back, and every device
plugged back in is picked up again by its own retry timer (nothing here reopens one).

Size (``POSTERM_SUITE_SIZE``): CI rings up 40 sales under random faults.
"""

from __future__ import annotations

import io
import random
import sqlite3
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from terminal.app.catalogue import CATALOGUE
from terminal.daemon.bootstrap import Terminal, build, device_health
from terminal.daemon.config import load_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from terminal.drivers.lcd import render_frame
from terminal.drivers.pole import PoleDecoder, encode_lines
from terminal.drivers.reconnect import LONGEST_RETRY
from tests.drivers.waiting import until
from tests.sync.conftest import run

from .chain import till_files
from .scripts import SIGN_IN, sale_lines
from .support import Counts, scaled

# What the cashier is told, as the LCD says it (in Chinese, its default language).
POLE_GONE, LCD_GONE = CATALOGUE["device.pole.gone"].zh, CATALOGUE["device.lcd.gone"].zh
READER_GONE, READER_BACK = CATALOGUE["device.msr.gone"].zh, CATALOGUE["device.msr.back"].zh

FAULTS = ("none", "printer-unplugged", "paper-out", "unplugged-mid-receipt", "pole-gone",
          "lcd-gone", "reader-replugged")


def _cut_after(device: Any, writes: int) -> None:
    """Pull the printer's cable after ``writes`` more writes (in the middle of a receipt)."""
    original = device._raw
    left = [writes]

    def raw(msg: bytes) -> None:
        left[0] -= 1
        if left[0] < 0:
            device.connected = False
        original(msg)
    device._raw = raw


def _break(terminal: Terminal, fault: str, rng: random.Random) -> None:
    printer = terminal.desk.printer.simulator  # the simulated hardware, kept across reconnects
    if fault == "printer-unplugged":
        printer.connected = False
    elif fault == "paper-out":
        printer.paper = "out"
    elif fault == "unplugged-mid-receipt":
        _cut_after(printer, rng.randint(3, 30))
    elif fault == "pole-gone" and terminal.pole is not None:
        terminal.pole.simulator.unplug()  # the USB-serial adapter pulled out: writes fail
    elif fault == "lcd-gone" and terminal.lcd is not None:
        terminal.lcd.simulator.connected = False  # the panel gone from the bus
    elif fault == "reader-replugged":
        reader = terminal.port("msr")
        reader.unplug()
        with pytest.raises(OSError, match="unplugged"):
            reader.inject([])
        reader.plug()


def _mend(terminal: Terminal) -> None:
    """Plug everything back in; nothing is reopened here: the devices' retry timers do that."""
    printer = terminal.desk.printer.simulator
    printer.__dict__.pop("_raw", None)  # the class's own write again
    printer.connected, printer.paper = True, "ok"
    if terminal.pole is not None and not terminal.pole.simulator.plugged:
        terminal.pole.simulator.plug()
    if terminal.lcd is not None:
        terminal.lcd.simulator.connected = True


async def _all_back(terminal: Terminal) -> None:
    """Every device plugged back is picked up again by itself, showing what it should."""
    pole, lcd = terminal.pole, terminal.lcd
    assert pole is not None and lcd is not None
    await until(lambda: terminal.desk.present and pole.present and lcd.present,
                LONGEST_RETRY * 3, "printer, pole display and LCD to be back")
    assert terminal.notices is not None
    await terminal.notices.settle()

    def pole_shown() -> bool:
        expected = PoleDecoder(pole.config.columns)
        expected.feed(encode_lines(*terminal.displays.lines, pole.config))
        return pole.simulator.lines == expected.lines

    def lcd_shown() -> bool:
        frame = terminal.displays.frame
        assert frame is not None
        return bool(lcd.simulator.image.tobytes()
                    == render_frame(frame, lcd.simulator.size).tobytes())
    # Once a returned display's notice has stopped leading, both show the till's output again.
    await until(lambda: terminal.displays.leading is None and pole_shown() and lcd_shown(), 10,
                "the pole and the LCD to show the current lines and frame again")
    health = device_health(terminal.desk, terminal.displays, terminal.ports)
    assert (health["printer"], health["pole"], health["lcd"]) == ("ok", "present", "present")
    assert not terminal.notices.absent and "absent" not in terminal.till.status


def _stored_sales(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        rows = {row[0] for row in db.execute("SELECT id FROM sale")}
    db.close()
    return rows


def test_sales_complete_through_hardware_faults(tmp_path: Path) -> None:
    files = till_files(tmp_path)
    rng = random.Random(7601)
    out = io.StringIO()
    counts = Counts("hardware")
    told: list[str] = []

    async def scenario() -> set[str]:
        terminal = await build(load_config(files.config), prepare=seed_demo)
        shown: set[str] = set()  # sale ids stored, one per sale rung up
        try:
            console = Console(terminal, out)
            await console.command(SIGN_IN)
            for _ in range(scaled(40)):
                fault = rng.choice(FAULTS)
                _break(terminal, fault, rng)
                before = _stored_sales(files.database)
                for line in sale_lines(rng):
                    await console.command(line)
                sale = sorted(_stored_sales(files.database) - before)
                assert len(sale) == 1, f"{fault}: no sale completed: {terminal.till.message}"
                shown.add(sale[0])
                counts.sales += 1
                if fault in ("pole-gone", "lcd-gone"):  # reported, and the sale did not wait
                    device = fault.removesuffix("-gone")

                    def reported(name: str = device) -> bool:
                        health = device_health(terminal.desk, terminal.displays, terminal.ports)
                        return health[name].startswith("absent")
                    # The display writes run on the device's own thread, after the sale's commit.
                    await until(reported, 5, f"{device} to be reported absent")
                    await _cashier_told(terminal, console, fault, sale[0])
                    told.append(fault)
                elif fault == "reader-replugged":  # told it went, and once that it is back
                    assert terminal.notices is not None
                    await terminal.notices.settle()
                    # (a display's own return may be told in between)
                    reader = [t for t in terminal.notices.told if t in (READER_GONE, READER_BACK)]
                    assert reader[-2:] == [READER_GONE, READER_BACK], terminal.notices.told
                    assert all(a != b for a, b in pairwise(reader)), reader  # each said once
                    told.append(fault)
                if terminal.desk.pending:  # the receipt did not print: the cashier was told,
                    # and the change (or amount paid) stays on the pole's first line
                    assert "Printer:" in terminal.till.message, terminal.till.message
                    shown_line = terminal.displays.lines[0]
                    assert shown_line.startswith(("CHANGE", "PAID")), terminal.displays.lines
                    told.append(fault)
                _mend(terminal)
                if terminal.desk.pending:
                    await console.command("reprint")
                    assert terminal.desk.pending == 0, terminal.till.message
                    assert sale[0] in terminal.desk.printed[-1].text
            await _all_back(terminal)
        finally:
            await terminal.close()
        return shown

    shown = run(scenario(), timeout=240)
    counts.write()
    assert len(shown) == counts.sales
    assert {"printer-unplugged", "paper-out", "pole-gone", "lcd-gone",
            "reader-replugged"} <= set(told), told


async def _cashier_told(terminal: Terminal, console: Console, fault: str, sale_id: str) -> None:
    """A display gone during a sale: the other display tells the cashier, and what the sale
    showed is still there."""
    notices = terminal.notices
    assert notices is not None
    await notices.settle()
    if fault == "pole-gone":
        # The LCD says it, beside the sale's own prompt (the change or the tender).
        assert "pole" in notices.absent and POLE_GONE in notices.told
        frame = terminal.displays.frame
        assert frame is not None and POLE_GONE in frame.prompt and sale_id in frame.prompt, \
            frame.prompt
        return
    # The pole is the only display: the change stays on it; the standing prompt's free second
    # line says it (the pole itself may still be on its way back from an earlier fault).
    assert "lcd" in notices.absent and LCD_GONE in notices.told
    assert terminal.displays.lines[0].startswith(("CHANGE", "PAID")), terminal.displays.lines
    await console.command("clear")
    pole = terminal.pole
    assert pole is not None
    await until(lambda: pole.simulator.lines[1] == "LCD disconnected", LONGEST_RETRY * 3,
                "the pole to say the LCD is gone")
