"""The drivers' config sections (``[printer]``, ``[drawer]``, ``[pole]``, ``[lcd]``,
``[input.NAME]``), apart from the drivers themselves.

Only the standard library and terminal.core: reading or checking a config (``posterm provision``
checks the technician's device sections with the daemon's own parser, at every first boot) must
not load what the drivers need to run (evdev, Pillow, python-escpos, asyncio), each of which costs
seconds of CPU under emulation and on a slow card. Each driver module re-exports its class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from terminal.core.configfile import setting

ROLES = ("msr", "scanner", "keypad")
# terminal.drivers.layouts.LAYOUTS's names (tests/drivers check they are the same).
LAYOUT_NAMES = ("us", "de")
PANELS = ("st7735", "st7789", "ili9341")
WIDTH_CHARS = {58: 32, 80: 48}  # characters per line by paper width (mm)


@dataclass(frozen=True)
class DrawerConfig:
    enabled: bool = setting(True, doc="a drawer is connected to the printer")
    pin: int = setting(2, doc="drawer-kick connector pin the solenoid is on", choices=(2, 5))
    pulse_ms: int = setting(100, doc="solenoid pulse length in ms", min=10, max=510)


@dataclass(frozen=True)
class InputDeviceConfig:
    backend: str = setting("simulated", doc="evdev (real device) or simulated",
                           choices=("evdev", "simulated"))
    role: str = setting("keypad", doc="msr (card reader), scanner or keypad", choices=ROLES)
    match: str = setting(
        "", doc="/dev/input/by-id/... or by-path/... path, vendor:product (0c2e:0b61) or a name "
                "pattern (*MSR*; several as *MSR*|*swipe*)"
    )
    layout: str = setting("us", doc="keyboard layout the device types in", choices=LAYOUT_NAMES)
    grab: bool = setting(True, doc="take the device exclusively so keys never reach a console")
    numlock: bool = setting(True, doc="num lock state assumed at start")
    max_burst_gap_ms: int = setting(35, doc="longest gap between keys of a machine burst",
                                     min=5, max=200)
    idle_complete_ms: int = setting(300, doc="complete an input without Enter after this idle",
                                    min=50, max=5000)
    rescan_seconds: float = setting(1.0, doc="how often to look for an absent device",
                                    min=0.1, max=60)
    keymap: Mapping[str, str] | None = setting(None, doc="keypad: key name -> action overrides")


@dataclass(frozen=True)
class LcdConfig:
    backend: str = setting("dummy", doc="st7735, st7789, ili9341 (SPI panels) or dummy (simulated)",
                           choices=(*PANELS, "dummy"))
    width: int = setting(160, doc="panel width in pixels", min=64, max=480)
    height: int = setting(128, doc="panel height in pixels", min=64, max=480)
    rotate: int = setting(0, doc="quarter turns clockwise", choices=(0, 1, 2, 3))
    spi_port: int = setting(0, doc="SPI bus", min=0, max=6)
    spi_device: int = setting(0, doc="SPI chip select", min=0, max=2)
    gpio_dc: int = setting(24, doc="BCM pin for data/command", min=0, max=27)
    gpio_rst: int = setting(25, doc="BCM pin for reset", min=0, max=27)
    bus_speed_hz: int = setting(16_000_000, doc="SPI clock", min=500_000, max=64_000_000)
    language: str = setting("zh", doc="the prompt's language: zh (Chinese) or en (English)",
                            choices=("zh", "en"))


@dataclass(frozen=True)
class PoleConfig:
    backend: str = setting("pty", doc="serial (a real display) or pty (simulated)",
                           choices=("serial", "pty"))
    port: str = setting("/dev/ttyUSB0", doc="serial device (prefer /dev/serial/by-id/...)")
    baudrate: int = setting(9600, doc="serial speed", choices=(2400, 4800, 9600, 19200, 38400))
    command_set: str = setting("escpos", doc="escpos (Epson DM-D) or cd5220",
                               choices=("escpos", "cd5220"))
    columns: int = setting(20, doc="characters per line (a Chinese character takes two)",
                           min=16, max=40)
    charset: str = setting(
        "ascii", doc="ascii, or gb2312 / gb18030 for Chinese displays (text sent as GB bytes)",
        choices=("ascii", "gb2312", "gb18030"),
    )
    placeholder: str = setting("*", doc="shown per column for characters the display lacks",
                               choices=("*", "?", "#", " ", "_"))
    brightness: int = setting(4, doc="brightness level at start, 1 (dim) to 4", min=1, max=4)


@dataclass(frozen=True)
class PrinterConfig:
    backend: str = setting(
        "dummy",
        doc="usb, serial, network (raw port 9100), file (/dev/usb/lp0) or dummy (simulated)",
        choices=("usb", "serial", "network", "file", "dummy"),
    )
    paper_mm: int = setting(80, doc="paper width in mm", choices=(58, 80))
    encoding: str = setting(
        "gb18030", doc="gb18030 for printers with Chinese firmware, cp437 for those without",
        choices=("gb18030", "cp437"),
    )
    cjk_fallback: str = setting(
        "image",
        doc="without Chinese firmware: print such lines as bitmaps (image) or as * (replace)",
        choices=("image", "replace"),
    )
    profile: str = setting("default", doc="python-escpos printer profile name")
    usb_vendor: int = setting(0x0416, doc="USB vendor id (usb)", min=0, max=0xFFFF)
    usb_product: int = setting(0x5011, doc="USB product id (usb)", min=0, max=0xFFFF)
    serial_port: str = setting("/dev/ttyUSB0", doc="serial device (prefer /dev/serial/by-id/...)")
    baudrate: int = setting(19200, doc="serial speed", choices=(9600, 19200, 38400, 57600, 115200))
    host: str = setting("", doc="printer address (network)")
    port: int = setting(9100, doc="raw printing port (network)", min=1, max=65535)
    file_path: str = setting("/dev/usb/lp0", doc="device or file to write to (file)")
    timeout: float = setting(5.0, doc="seconds to wait for the printer", min=0.1, max=60)
    read_status: bool = setting(True, doc="ask the printer for online/paper status (DLE EOT)")

    @property
    def width_chars(self) -> int:
        return WIDTH_CHARS[self.paper_mm]
