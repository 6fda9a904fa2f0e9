"""Customer pole display (2x20 VFD) over pyserial, in the Epson ESC/POS (DM-D) or CD5220 set.

The simulated back-end is a pseudo-terminal pair: the driver writes to the slave side through
pyserial exactly as to a real port, and :class:`PoleDecoder` on the master side interprets both
command sets into the two lines a customer would see. Text the display cannot show (Chinese on an
ASCII display) is degraded by :func:`transliterate.degrade`, never sent as mojibake.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from dataclasses import dataclass
from typing import Any

from terminal.drivers.reconnect import OutputDevice
from terminal.drivers.settings import PoleConfig
from terminal.drivers.textwidth import align
from terminal.drivers.transliterate import ascii_only, degrade

ESC, US, CLR, CR, LF = 0x1B, 0x1F, 0x0C, 0x0D, 0x0A


@dataclass(frozen=True)
class CommandSet:
    """Byte sequences of one pole-display dialect."""

    init: bytes
    brightness: bytes  # followed by the level 1-4
    lines: tuple[bytes, bytes]  # what precedes each line's text
    line_end: bytes


COMMAND_SETS = {
    # Epson DM-D: US $ x y moves the cursor (1-based); US 1 overwrite mode; US C 0 hides it.
    "escpos": CommandSet(bytes([ESC, 0x40, US, 0x01, US, 0x43, 0x30, CLR]), bytes([US, 0x58]),
                         (bytes([US, 0x24, 1, 1]), bytes([US, 0x24, 1, 2])), b""),
    # CD5220: ESC DC1 overwrite mode; ESC Q A / ESC Q B set the upper / lower line up to CR.
    "cd5220": CommandSet(bytes([ESC, 0x40, ESC, 0x11, CLR]), bytes([ESC, 0x2A]),
                         (bytes([ESC, 0x51, 0x41]), bytes([ESC, 0x51, 0x42])), bytes([CR])),
}


def _shows(charset: str):  # -> Callable[[str], bool]
    if charset == "ascii":
        return ascii_only

    def encodes(char: str) -> bool:
        try:
            char.encode(charset)
        except UnicodeEncodeError:
            return False
        return char.isprintable()
    return encodes


def encode_lines(line1: str, line2: str, config: PoleConfig) -> bytes:
    """The bytes that put two lines on the display, each padded so it overwrites the old one."""
    commands = COMMAND_SETS[config.command_set]
    codec = "ascii" if config.charset == "ascii" else config.charset
    shows = _shows(config.charset)
    out = bytearray()
    for prefix, text in zip(commands.lines, (line1, line2), strict=True):
        shown = align(degrade(text, shows, config.placeholder), config.columns)
        out += prefix + shown.encode(codec) + commands.line_end
    return bytes(out)


class PoleDisplay(OutputDevice):
    """``show`` blocks on the serial write; from the loop use ``await update(...)``.

    The display keeps the last lines asked for and its brightness, and shows them again whenever
    it is opened: after a cable pulled and put back, the retry timer of :class:`OutputDevice`
    reopens the port and the customer sees the current lines.
    """

    kind = "pole display"

    def __init__(self, config: PoleConfig) -> None:
        super().__init__("pole")
        self.config = config
        self.simulator: PtyPole | None = None
        self.lines: tuple[str, str] = ("", "")  # the last lines asked for, shown or not
        self._level = config.brightness
        self._port: Any = None

    def _open(self) -> None:
        import serial

        port = self.config.port
        if self.config.backend == "pty":
            if self.simulator is None:
                self.simulator = PtyPole(self.config)
            if not self.simulator.plugged:
                # As a pulled USB adapter's /dev node: gone. The stale pts path must not be
                # opened, since the kernel may already have given its number to another pty.
                raise FileNotFoundError(errno.ENOENT, "simulated display unplugged",
                                        self.simulator.slave_path)
            port = self.simulator.slave_path
        self._port = serial.Serial(port, self.config.baudrate, timeout=1, write_timeout=2)
        commands = COMMAND_SETS[self.config.command_set]
        self._write(commands.init + commands.brightness + bytes([self._level])
                    + encode_lines(*self.lines, self.config))

    def _release(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError):  # the adapter is already gone
                port.close()

    def _forget_simulator(self) -> None:
        if self.simulator is not None:
            self.simulator.close()
            self.simulator = None

    def show(self, line1: str, line2: str = "") -> None:
        """Show two lines; raises OSError if the display is absent (they are kept for later)."""
        self.lines = (line1, line2)
        self._write(encode_lines(line1, line2, self.config))

    async def update(self, line1: str, line2: str = "") -> bool:
        """``show`` on the display's thread; False if it is absent (it shows them on return)."""
        return await self.executor.run(self._update, line1, line2)

    def _update(self, line1: str, line2: str) -> bool:
        try:
            self.show(line1, line2)
        except OSError:
            return False  # reported by _write; the retry timer brings the display back
        return True

    def brightness(self, level: int) -> None:
        if not 1 <= level <= 4:
            raise ValueError(f"brightness is 1 (dim) to 4 (bright), not {level}")
        self._level = level
        self._write(COMMAND_SETS[self.config.command_set].brightness + bytes([level]))

    def _write(self, data: bytes) -> None:
        if self._port is None:
            raise OSError(f"pole display {self.state}")
        try:
            self._port.write(data)
        except OSError as exc:  # SerialException: unplugged, port closed, write timed out
            self._lost(exc)
            raise OSError(f"pole display {self.state}") from exc


class PoleDecoder:
    """Interprets DM-D and CD5220 bytes like the display's firmware; ``lines`` is what shows."""

    def __init__(self, columns: int = 20, rows: int = 2, charset: str = "ascii") -> None:
        self.columns, self.rows = columns, rows
        self.charset = charset  # gb2312/gb18030: a lead byte and the next are one character
        self.brightness = 4
        self.unknown: list[bytes] = []  # commands the display would not understand
        self._cells = [[" "] * columns for _ in range(rows)]
        self._row = self._col = 0
        self._pending = bytearray()
        self._in_line: int | None = None  # CD5220 ESC Q A/B: a line set up to CR

    @property
    def lines(self) -> tuple[str, str]:
        first, second = ("".join(row).rstrip() for row in self._cells[:2])
        return first, second

    def feed(self, data: bytes) -> None:
        self._pending += data
        while self._pending:
            used = self._step(bytes(self._pending))
            if used == 0:
                return  # an incomplete command: wait for more bytes
            del self._pending[:used]

    def _clear(self) -> None:
        self._cells = [[" "] * self.columns for _ in range(self.rows)]
        self._row = self._col = 0

    def _step(self, data: bytes) -> int:
        first = data[0]
        wide = self._wide(data)
        if wide == 0:
            return 0  # half a double-byte character: wait for the rest
        if self._in_line is not None:
            if first == CR:
                self._in_line = None
            elif wide == 2:
                self._put_wide(self._in_line, data[:2])
            elif self._col < self.columns:
                self._cells[self._in_line][self._col] = self._char(first)
                self._col += 1
            return wide if first != CR else 1
        if first in (ESC, US):
            return self._command(data)
        if first == CLR:
            self._clear()
        elif first == CR:
            self._col = 0
        elif first == LF:
            self._row = min(self._row + 1, self.rows - 1)
        elif wide == 2:
            self._put_wide(self._row, data[:2])
            return 2
        else:
            self._put(self._char(first))
        return 1

    def _wide(self, data: bytes) -> int:
        """2 for a GB double-byte character, 1 for a single byte, 0 for half a character."""
        if self.charset == "ascii" or data[0] < 0x81:
            return 1
        return 2 if len(data) >= 2 else 0

    def _put_wide(self, row: int, pair: bytes) -> None:
        try:
            char = pair.decode(self.charset)
        except UnicodeDecodeError:
            self.unknown.append(pair)
            char = "\ufffd"
        if self._col + 2 <= self.columns:  # the second cell is covered by the character
            self._cells[row][self._col], self._cells[row][self._col + 1] = char, ""
            self._col += 2
        if row == self._row and self._col == self.columns and self._in_line is None:
            self._col = 0
            self._row = (self._row + 1) % self.rows

    def _command(self, data: bytes) -> int:
        # (prefix, total length) of each command both dialects use.
        known = {b"\x1b@": 2, b"\x1f\x01": 2, b"\x1b\x11": 2, b"\x1fC": 3, b"\x1fX": 3,
                 b"\x1b*": 3, b"\x1f$": 4, b"\x1bl": 4, b"\x1bQ": 3}
        head = data[:2]
        if len(head) < 2:
            return 0
        size = known.get(head)
        if size is None:
            self.unknown.append(head)
            return 2
        if len(data) < size:
            return 0
        if head == b"\x1b@":
            self._clear()
            self.brightness = 4
        elif head in (b"\x1fX", b"\x1b*"):
            self.brightness = data[2]
        elif head in (b"\x1f$", b"\x1bl"):
            self._col = min(max(data[2] - 1, 0), self.columns - 1)
            self._row = min(max(data[3] - 1, 0), self.rows - 1)
        elif head == b"\x1bQ":
            if data[2] not in b"AB":
                self.unknown.append(data[:3])
                return 3
            self._in_line = data[2] - 0x41
            self._cells[self._in_line] = [" "] * self.columns
            self._col = 0
        return size

    def _char(self, byte: int) -> str:
        if 0x20 <= byte < 0x7F:
            return chr(byte)
        self.unknown.append(bytes([byte]))
        return "\ufffd"  # would be a glyph from the display's code page: mojibake

    def _put(self, char: str) -> None:
        self._cells[self._row][self._col] = char
        self._col += 1
        if self._col == self.columns:
            self._col = 0
            self._row = (self._row + 1) % self.rows


class PtyPole:
    """A pseudo-terminal pair standing in for the display: pyserial writes to ``slave_path``;
    the master side is read into a :class:`PoleDecoder`. ``unplug()`` closes the pair (writes
    fail with EIO, as when a USB-serial adapter is pulled out); ``plug()`` makes a fresh one, a
    display that has just been powered up, with a blank decoder."""

    def __init__(self, config: PoleConfig) -> None:
        self.columns = config.columns
        self.charset = config.charset
        self.received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.plug()

    def plug(self) -> None:
        self.decoder = PoleDecoder(self.columns, charset=self.charset)
        self._master, self._slave = os.openpty()
        os.set_blocking(self._master, False)
        self.slave_path = os.ttyname(self._slave)
        if self._loop is not None:
            self._loop.add_reader(self._master, self.pump)

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def unplug(self) -> None:
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)
        self._master = self._slave = -1

    @property
    def lines(self) -> tuple[str, str]:
        """The two visible lines, after decoding everything sent so far."""
        self.pump()
        return self.decoder.lines

    def pump(self) -> int:
        """Read whatever the display has been sent and decode it; returns the byte count."""
        total = 0
        while self._master >= 0:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EAGAIN: nothing more; EIO: no writer has the slave open
                break
            if not chunk:
                break
            total += len(chunk)
            self.decoder.feed(chunk)
        self.received += total
        return total

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._master, self.pump)

    def close(self) -> None:
        self.unplug()
        self._loop = None


def open_pole(config: PoleConfig) -> PoleDisplay:
    return PoleDisplay(config)
