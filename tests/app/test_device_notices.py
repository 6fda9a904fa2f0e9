"""The cashier is told when a display or input device goes and comes back (DESIGN promise 8),
on simulated hardware at its honest layer: the pole's pseudo-terminal closed by its simulator,
the dummy LCD's panel disconnected, a simulated reader unplugged. Nothing here reopens a device
or calls the notices: the drivers see the change and the terminal tells the cashier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from terminal.app.device_notices import DeviceNotices
from terminal.app.hqlink import Standalone
from terminal.app.inputs import WatchedPort
from terminal.daemon.bootstrap import Terminal, device_health
from terminal.drivers.input import InputDeviceConfig
from terminal.drivers.lcd import Lcd, render_frame
from terminal.drivers.pole import PoleDecoder, PoleDisplay, encode_lines
from terminal.drivers.reconnect import LONGEST_RETRY
from tests.app.conftest import TillBench
from tests.drivers.test_input import READER, FakeBus, FakeEvdevDevice
from tests.drivers.waiting import until

BACK_WITHIN = LONGEST_RETRY * 3
LEAD = 2.0  # how long a new notice leads the LCD's prompt here (5 s at the counter)
READER_GONE = "Card reader disconnected — key the member number"


class Bench(TillBench):
    """The test till with a pole, optionally an LCD; ``do`` also lets the notices settle."""

    def __init__(self, tmp: Path, examples: Path, lcd: bool, link: Any = None) -> None:
        lcd_config = {"lcd": {"backend": "dummy", "language": "en"}}
        super().__init__(tmp, examples, lcd_config if lcd else None, link)
        self.terminal.displays.lead_seconds = LEAD

    def do(self, *lines: str) -> None:
        super().do(*lines)
        self.settle()

    def settle(self) -> None:
        """Let queued presence changes reach the notices, and the notices the displays."""
        async def settled() -> None:
            await asyncio.sleep(0.01)
            await self.notices.settle()
        self.runner.run(settled())

    def wait(self, check: Callable[[], Any], what: str) -> None:
        self.runner.run(until(check, BACK_WITHIN, what))
        self.settle()

    def lead_over(self) -> None:
        """Wait until no notice leads the LCD's prompt any more."""
        self.wait(lambda: self.terminal.displays.leading is None, "the notice's lead to end")

    @property
    def notices(self) -> DeviceNotices:
        assert self.terminal.notices is not None
        return self.terminal.notices

    @property
    def pole(self) -> PoleDisplay:
        assert self.terminal.pole is not None
        return self.terminal.pole

    @property
    def lcd(self) -> Lcd:
        assert self.terminal.lcd is not None
        return self.terminal.lcd

    @property
    def pole_lines(self) -> tuple[str, str]:
        """The pole's two lines, once it shows the ones last sent (it writes on its thread)."""
        simulator = self.pole.simulator
        assert simulator is not None
        self.wait(lambda: simulator.lines == self.terminal.displays.lines,
                  "the pole to show the lines last sent")
        return simulator.lines

    def _drawn(self) -> bool:
        """Whether the panel's own image shows the frame last sent (it draws on its thread)."""
        frame, simulator = self.terminal.displays.frame, self.lcd.simulator
        if frame is None or simulator is None or simulator.image is None:
            return False
        image = simulator.image
        return image.tobytes() == render_frame(frame, image.size).tobytes()

    @property
    def prompt(self) -> str:
        """The LCD's prompt bar as last sent, once the panel's own image shows it."""
        if self.lcd.present:
            self.wait(self._drawn, "the LCD to draw the frame last sent")
        frame = self.terminal.displays.frame
        assert frame is not None
        return frame.prompt



def _signed_in(tmp_path: Path, examples: Path, lcd: bool) -> Iterator[Bench]:
    bench = Bench(tmp_path, examples, lcd=lcd)
    bench.do("1 enter 1234 enter")
    yield bench
    bench.close()


@pytest.fixture
def with_lcd(tmp_path: Path, examples: Path) -> Iterator[Bench]:
    yield from _signed_in(tmp_path, examples, lcd=True)


@pytest.fixture
def pole_only(tmp_path: Path, examples: Path) -> Iterator[Bench]:
    yield from _signed_in(tmp_path, examples, lcd=False)


def shown(bench: Bench, line1: str, line2: str) -> tuple[str, str]:
    decoder = PoleDecoder(bench.pole.config.columns)
    decoder.feed(encode_lines(line1, line2, bench.pole.config))
    return decoder.lines


def test_pole_unplugged_mid_sale_is_told_on_the_lcd_and_the_sale_completes(
        with_lcd: Bench) -> None:
    bench = with_lcd
    bench.do("b 6900000000014")
    assert bench.pole.simulator is not None
    bench.pole.simulator.unplug()  # the USB-serial adapter pulled out
    bench.do("40 dept2")  # the write fails: the pole is gone
    assert not bench.pole.present
    assert bench.notices.told == ["Customer display disconnected"]
    # Told at once on the LCD, ahead of the sale's lines, which stay: the running total too.
    assert bench.prompt.startswith("Customer display disconnected · ")
    assert bench.prompt.endswith(", total 52.50")
    assert bench.terminal.displays.asked[1].startswith("TOTAL")
    assert "absent: pole" in bench.terminal.till.status
    bench.lead_over()  # the prompt leads again; the reminder follows it
    assert bench.prompt == "Dept 2 40.00, total 52.50 · Customer display disconnected"
    bench.do("subtotal")
    assert bench.prompt.startswith("Due ") and bench.prompt.endswith(
        " · Customer display disconnected")
    bench.do("cash")
    assert bench.terminal.till.refused is None
    assert "S001-T01-0001" in bench.receipts[-1]
    assert bench.prompt.startswith("Sale S001-T01-0001: change 0.00")

    bench.pole.simulator.plug()  # plugged back: its retry timer finds it
    bench.wait(lambda: bench.pole.present, "the pole display to be back")
    assert bench.notices.told == ["Customer display disconnected", "Customer display back"]
    assert bench.prompt.startswith("Customer display back · Sale S001-T01-0001")
    assert bench.pole_lines == shown(bench, *bench.terminal.displays.asked)
    assert "absent" not in bench.terminal.till.status
    bench.lead_over()  # said once: then the display is the till's alone
    assert bench.prompt == "Sale S001-T01-0001: change 0.00"
    bench.do("b 6900000000014")
    assert "back" not in bench.prompt and "disconnected" not in bench.prompt
    assert bench.notices.told[-1] == "Customer display back"


def test_lcd_gone_is_told_on_the_pole_only_where_nothing_is_lost(tmp_path: Path,
                                                                  examples: Path) -> None:
    bench = Bench(tmp_path, examples, lcd=True)
    try:
        bench.do("1 enter 1234 enter")
        assert bench.lcd.simulator is not None
        bench.lcd.simulator.connected = False  # the panel gone from the bus
        bench.do("clear")  # the standing prompt: its second line may carry the notice
        assert not bench.lcd.present
        assert bench.notices.told == ["LCD disconnected"]
        assert bench.pole_lines == ("Swipe member card", "LCD disconnected")
        bench.do("s", "b 6900000000014")  # a sale: the customer's lines stay as they are
        assert bench.pole_lines == shown(bench, *bench.terminal.displays.asked)
        assert bench.pole_lines[1].startswith("TOTAL")
        bench.do("subtotal", "100 cash")
        assert bench.pole_lines[0].startswith("CHANGE")
        assert "S001-T01-0001" in bench.receipts[-1]

        bench.lcd.simulator.connected = True
        bench.wait(lambda: bench.lcd.present, "the LCD to be back")
        assert bench.notices.told == ["LCD disconnected", "LCD back"]
        assert bench.prompt.startswith("LCD back · Sale S001-T01-0001: change")
        assert bench.pole_lines[0].startswith("CHANGE")  # not touched: the LCD is back
        bench.lead_over()
        assert "LCD back" not in bench.prompt
        bench.do("clear")
        assert bench.pole_lines == ("Swipe member card", "or scan an item")
    finally:
        bench.close()


def test_reader_unplugged_mid_sale_the_member_is_keyed_and_the_return_said_once(
        with_lcd: Bench) -> None:
    bench = with_lcd
    bench.do("b 6900000000014")
    before = bench.pole_lines
    reader = bench.terminal.port("msr")
    reader.unplug()
    bench.settle()
    assert bench.notices.told == [READER_GONE]
    assert bench.prompt.startswith(f"{READER_GONE} · ")  # told at once, on the LCD
    assert bench.prompt.endswith("Strawberries 12.50, total 12.50")
    assert bench.pole_lines == before  # the customer's lines are not touched
    assert "absent: reader" in bench.terminal.till.status
    bench.do("8000123456 member", "subtotal", "cash")  # the member keyed instead of swiped
    assert bench.terminal.till.refused is None
    assert "S001-T01-0001" in bench.receipts[-1] and "3456" in bench.receipts[-1]
    bench.lead_over()
    assert bench.prompt.startswith("Sale S001-T01-0001")
    assert bench.prompt.endswith(f" · {READER_GONE}")  # the reminder follows the prompt

    reader.plug()
    bench.settle()
    assert bench.notices.told == [READER_GONE, "Card reader back"]
    assert bench.prompt.startswith("Card reader back · Sale S001-T01-0001")
    assert READER_GONE not in bench.prompt
    bench.lead_over()
    bench.do("s")  # the reader reads again; "back" was said once
    assert bench.terminal.till.draft.member is not None
    assert "back" not in bench.prompt
    assert bench.notices.told == [READER_GONE, "Card reader back"]
    assert "absent" not in bench.terminal.till.status


def test_reader_unplugged_with_the_pole_alone(pole_only: Bench) -> None:
    bench = pole_only
    bench.do("clear")
    bench.terminal.port("msr").unplug()
    bench.settle()
    assert bench.pole_lines == ("Swipe member card", "Reader off: key no.")
    bench.do("b 6900000000014")  # the sale's lines: no notice over the total
    assert bench.pole_lines[1].startswith("TOTAL")
    bench.do("cash")
    assert bench.pole_lines[0].startswith("CHANGE")
    bench.do("clear")  # the standing prompt again: the reminder is back on its second line
    assert bench.pole_lines == ("Swipe member card", "Reader off: key no.")
    bench.terminal.port("msr").plug()
    bench.settle()
    assert bench.pole_lines == ("Swipe member card", "Card reader back")
    bench.lead_over()  # said once
    assert bench.pole_lines == ("Swipe member card", "or scan an item")
    bench.do("clear")
    assert bench.pole_lines == ("Swipe member card", "or scan an item")


def test_no_display_is_in_the_status_and_logged_once(with_lcd: Bench,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    bench = with_lcd
    assert bench.pole.simulator is not None and bench.lcd.simulator is not None
    caplog.set_level(logging.INFO, "terminal.app.device_notices")
    bench.pole.simulator.unplug()
    bench.lcd.simulator.connected = False
    bench.do("b 6900000000014", "b 6900000000014", "cash")  # many writes, all failing
    assert bench.terminal.till.refused is None
    assert "S001-T01-0001" in bench.receipts[-1]
    assert "NO DISPLAY; absent: " in bench.terminal.till.status
    assert {"pole", "lcd"} == set(bench.terminal.till.status.split("absent: ")[1].split(", "))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("no display works"), errors
    bench.lcd.simulator.connected = True
    bench.wait(lambda: bench.lcd.present, "the LCD to be back")
    assert "a display works again: lcd" in caplog.text
    assert "NO DISPLAY" not in bench.terminal.till.status
    assert "absent: pole" in bench.terminal.till.status
    assert bench.prompt.startswith("LCD back · ")
    assert "Customer display disconnected" in bench.prompt
    bench.pole.simulator.plug()
    bench.wait(lambda: bench.pole.present, "the pole display to be back")


class StatusLink(Standalone):
    """The standalone ledger, with the MQTT link's ``publish_status``: records each status."""

    def __init__(self) -> None:
        self.terminal: Terminal | None = None
        self.published: list[dict[str, str]] = []

    async def publish_status(self) -> None:
        terminal = self.terminal
        assert terminal is not None
        self.published.append(device_health(terminal.desk, terminal.displays, terminal.ports))


def test_each_change_is_published_to_hq_at_once(tmp_path: Path, examples: Path) -> None:
    link = StatusLink()
    bench = Bench(tmp_path, examples, lcd=True, link=link)
    try:
        link.terminal = bench.terminal
        bench.terminal.port("msr").unplug()
        bench.settle()
        assert link.published == [{"printer": "ok", "pole": "present", "lcd": "present",
                                    "reader": "absent", "scanner": "present",
                                    "keypad": "present"}]
        bench.terminal.port("msr").plug()
        bench.settle()
        assert len(link.published) == 2 and link.published[1]["reader"] == "present"
    finally:
        bench.close()


def test_evdev_reader_missing_at_start_unplugged_and_found_again_by_its_rescan() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        changes: list[tuple[str, bool]] = []
        bus = FakeBus()
        devices, fakes = bus.devices, bus.fakes
        config = InputDeviceConfig(backend="evdev", role="msr", match="0801:0002",
                                   rescan_seconds=0.1)
        port = WatchedPort(config, lambda role, item: None,
                           lambda p, present: changes.append((p.config.role, present)),
                           discover=bus.discover, open_device=bus.open_device)
        port.start()
        await until(lambda: port.status == "absent", 2, "the first rescan")
        for _ in range(3):  # every rescan finds nothing: said once
            await asyncio.sleep(0.1)
        assert changes == [("msr", False)]
        devices.append(READER)  # plugged in
        await until(lambda: port.present, 2, "the reader to be attached")
        fakes[0].gone = True
        devices.clear()
        fakes[0].send([])  # the read fails: ENODEV
        await until(lambda: not port.present, 2, "the reader to be lost")
        devices.append(READER)
        await until(lambda: port.present, 2, "the reader to be found again")
        port.close()  # released at shutdown: no notice
        return changes

    assert asyncio.run(scenario()) == [("msr", False), ("msr", True), ("msr", False),
                                       ("msr", True)]


def test_a_reader_there_from_the_start_is_no_news() -> None:
    async def scenario() -> list[tuple[str, bool]]:
        changes: list[tuple[str, bool]] = []
        config = InputDeviceConfig(backend="evdev", role="scanner", match="0801:0002",
                                   rescan_seconds=0.1)
        port = WatchedPort(config, lambda role, item: None,
                           lambda p, present: changes.append((p.config.role, present)),
                           discover=lambda: [READER], open_device=lambda path: FakeEvdevDevice())
        port.start()
        await until(lambda: port.present, 2, "the scanner to be attached")
        await asyncio.sleep(0.25)
        port.close()
        return changes

    assert asyncio.run(scenario()) == []
