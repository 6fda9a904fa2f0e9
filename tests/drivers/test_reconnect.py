"""Output devices that go away and come back (DESIGN promise 8), each at its lowest honest layer:

- the pole display on its ``serial`` back-end, pyserial writing a real pseudo-terminal that the
  config names through a symlink; the pty is closed (writes fail with EIO) and a fresh one is put
  at the same path by swapping the symlink atomically, as udev does for /dev/serial/by-id;
- the printer on its ``network`` back-end against a local TCP server standing in for a port-9100
  printer that drops the connection, stops listening, and listens again on the same port;
- the LCD on its ``dummy`` back-end, whose panel raises while unplugged.

Nothing here reopens a device: each device's own retry timer on the loop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from terminal.drivers.document import Document, render_escpos
from terminal.drivers.lcd import LcdConfig, LcdFrame, open_lcd, render_frame
from terminal.drivers.pole import PoleConfig, PoleDecoder, PtyPole, encode_lines, open_pole
from terminal.drivers.printer import PrinterConfig, open_printer
from terminal.drivers.reconnect import LONGEST_RETRY
from tests.drivers.waiting import until

BACK_WITHIN = LONGEST_RETRY * 2 + 2  # the backoff ceiling, twice, and slack for a busy machine


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):
            await scenario()
    asyncio.run(bounded())


def shown(config: PoleConfig, line1: str, line2: str) -> tuple[str, str]:
    """What the display's firmware would show for these lines."""
    decoder = PoleDecoder(config.columns)
    decoder.feed(encode_lines(line1, line2, config))
    return decoder.lines


def link_to(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` in one rename, as udev replaces a by-id link."""
    fresh = link.with_name(link.name + ".new")
    os.symlink(target, fresh)
    os.replace(fresh, link)


@pytest.mark.parametrize("command_set", ["escpos", "cd5220"])
def test_pole_display_on_a_replugged_port_shows_the_current_lines(
        tmp_path: Path, command_set: str) -> None:
    link = tmp_path / "usb-Epson_DM-D110-if00-port0"
    config = PoleConfig(backend="serial", port=str(link), command_set=command_set, brightness=2)
    before = PtyPole(config)
    link_to(link, before.slave_path)
    display = open_pole(config)

    async def scenario() -> None:
        assert await display.connect()
        assert await display.update("Cola x2", "14.00")
        assert before.lines == shown(config, "Cola x2", "14.00")

        before.unplug()  # the adapter pulled out: the port's other end is gone
        assert not await display.update("Total", "19.50")  # the sale goes on
        assert not display.present and display.state.startswith("absent (lost")
        assert not await display.update("Change 0.50", "Thank you")  # kept for the return

        after = PtyPole(config)  # plugged back: a new tty, the same stable name
        try:
            link_to(link, after.slave_path)
            # The reopening writes the lines, then marks the display present: wait for both
            # (the lines alone were seen a moment before ``present``, on a loaded machine).
            await until(lambda: display.present
                        and after.lines == shown(config, "Change 0.50", "Thank you"),
                        BACK_WITHIN, "the display to be back, showing the current lines")
            assert display.state == "present"
            assert after.decoder.brightness == 2 and after.decoder.unknown == []

            await display.aclose()  # a closed display can be started again
            assert display.state == "closed"
            assert await display.connect()
            assert await display.update("Welcome", "")
            assert after.lines == ("Welcome", "")
        finally:
            await display.aclose()
            after.close()

    try:
        run(scenario)
    finally:
        before.close()


def test_pole_display_missing_at_start_is_picked_up_when_it_appears(tmp_path: Path) -> None:
    link = tmp_path / "pole"
    config = PoleConfig(backend="serial", port=str(link))
    display = open_pole(config)
    pty = PtyPole(config)

    async def scenario() -> None:
        assert not await display.connect()
        assert "cannot open" in display.state
        assert not await display.update("Welcome", "Swipe your card")
        link_to(link, pty.slave_path)
        await until(lambda: pty.lines == ("Welcome", "Swipe your card"), BACK_WITHIN,
                    "the display to be picked up")
        await display.aclose()

    try:
        run(scenario)
    finally:
        pty.close()


class PrinterStandIn:
    """A port-9100 printer on a free loopback port that records what it is sent; ``unplug``
    resets the connection and stops listening, ``plug`` listens on the same port again."""

    def __init__(self) -> None:
        self.port = 0
        self.received = bytearray()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        while data := await reader.read(65536):
            self.received += data

    async def unplug(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # power off: the connection is reset, not closed politely
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                       struct.pack("ii", 1, 0))
            writer.transport.abort()
        for writer in self._writers:  # abort() closes on the loop's next turn: wait for it, so
            with contextlib.suppress(OSError):  # the reset has happened before unplug returns
                await writer.wait_closed()
        self._writers.clear()
        await self._server.wait_closed()


def receipt(text: str) -> Document:
    return Document().title(text).columns("Cola", "7.00").cut()


def test_network_printer_that_comes_back_prints_the_kept_receipt() -> None:
    stand_in = PrinterStandIn()

    async def scenario() -> None:
        await stand_in.plug()
        # The stand-in does not answer DLE EOT status queries; a real one would.
        printer = open_printer(PrinterConfig(backend="network", host="127.0.0.1",
                                             port=stand_in.port, timeout=1, read_status=False))
        try:
            assert await printer.connect()
            first = await printer.executor.run(printer.print_document, receipt("first"))
            assert first.printed
            await until(lambda: stand_in.received.endswith(render_escpos(receipt("first"))), 5,
                        "the first receipt to arrive")

            await stand_in.unplug()
            kept = await printer.executor.run(printer.print_document, receipt("kept"))
            assert not kept.printed and "receipt kept" in kept.message
            assert [job for job, _doc in printer.pending] == [kept.job]
            assert not printer.present and printer.last_error.startswith("network printer absent")

            stand_in.received.clear()
            await stand_in.plug()  # the same port, listening again
            await until(lambda: not printer.pending, BACK_WITHIN, "the kept receipt to print")
            await until(lambda: stand_in.received.endswith(render_escpos(receipt("kept"))), 5,
                        "the kept receipt's bytes to arrive")
            assert printer.present and printer.last_error == ""
        finally:
            await printer.aclose()
            await stand_in.unplug()

    run(scenario)


def test_lcd_that_raises_then_recovers_shows_the_current_frame(
        caplog: pytest.LogCaptureFixture) -> None:
    lcd = open_lcd(LcdConfig(backend="dummy"))
    welcome = LcdFrame(None, None, None, "Swipe card")
    member = LcdFrame("王小明", "金卡 Gold", 1234, "请付款 Please pay")

    async def scenario() -> None:
        assert await lcd.connect()
        panel = lcd.simulator
        assert panel is not None
        assert await lcd.update(welcome)

        panel.connected = False  # the panel gone from the bus
        opens = 0
        real_open = panel.open

        def counted_open() -> object:
            nonlocal opens
            opens += 1
            return real_open()
        panel.open = counted_open  # type: ignore[method-assign]

        with caplog.at_level(logging.INFO, logger="terminal.drivers.reconnect"):
            assert not await lcd.update(member)
            assert not lcd.present and lcd.device is None
            await until(lambda: opens >= 2, BACK_WITHIN, "two tries to reopen the panel")
            assert not lcd.present  # still unplugged: still absent

            panel.connected = True
            # The LCD's thread sets ``present`` and then logs "LCD is back" (reconnect's
            # _start): wait for the log line, or a busy machine lets the test read the log,
            # and leave caplog's level, between the two (seen once at load 8-12).
            await until(lambda: lcd.present and any(
                r.getMessage() == "LCD is back" for r in caplog.records),
                BACK_WITHIN, "the panel to be back")
        assert panel.image.tobytes() == render_frame(member, (160, 128)).tobytes()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("LCD lost" in m for m in messages) == 1, messages  # reported once, not per try
        assert messages[-1] == "LCD is back"
        await lcd.aclose()

    run(scenario)
