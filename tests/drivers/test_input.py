from __future__ import annotations

import asyncio
import logging
import os

import pytest
from evdev import ecodes

from terminal.core.configfile import ConfigError
from terminal.drivers.input import (
    InputDeviceConfig,
    InputPort,
    SeenDevice,
    device_matches,
    guess_role,
)
from terminal.drivers.keys import events_for_keys, events_for_text
from terminal.drivers.msr import parse_swipe
from tests.drivers.waiting import until

READER = SeenDevice("/dev/input/event7", "USB Swipe MSR Reader", 0x0801, 0x0002, None)


class FakeEvdevDevice:
    """Stands in for evdev.InputDevice: a real pipe fd for loop.add_reader, queued events."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self.fd = self._read_fd
        self.queue: list = []
        self.grabbed = False
        self.gone = False

    def grab(self) -> None:
        self.grabbed = True

    def send(self, events: list) -> None:
        self.queue += events
        os.write(self._write_fd, b"x")

    def read(self):
        with __import__("contextlib").suppress(BlockingIOError):
            os.read(self._read_fd, 1024)
        if self.gone:
            raise OSError(19, "No such device")
        events, self.queue = self.queue, []
        return events

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


class FakeBus:
    """What a port's rescan finds (``devices``, a test plugs and pulls them) and the fake
    devices it opened (``fakes``): ``discover`` and ``open_device`` for an InputPort."""

    def __init__(self) -> None:
        self.devices: list[SeenDevice] = []
        self.fakes: list[FakeEvdevDevice] = []

    def discover(self) -> list[SeenDevice]:
        return self.devices

    def open_device(self, path: str) -> FakeEvdevDevice:
        self.fakes.append(FakeEvdevDevice())
        return self.fakes[-1]


def test_matching_by_path_ids_and_name() -> None:
    assert device_matches("0801:0002", READER)
    assert not device_matches("0801:0003", READER)
    assert device_matches("*msr*", READER)
    assert device_matches("/dev/input/event7", READER)
    with pytest.raises(ConfigError, match="'match' is empty"):
        device_matches("", READER)


def test_role_guessing() -> None:
    assert guess_role("USB Swipe MSR Reader", []) == "msr"
    assert guess_role("Honeywell 1900", []) == "scanner"
    assert guess_role("SIGMACHIP USB Keyboard", [ecodes.KEY_KP5]) == "keypad"
    assert guess_role("Logitech Keyboard", [ecodes.KEY_Q, ecodes.KEY_KP5]) is None


def test_simulated_reader_decodes_and_survives_unplug() -> None:
    got: list = []
    port = InputPort(InputDeviceConfig(role="msr"), lambda role, item: got.append((role, item)))
    port.inject(events_for_text(";8000123456=3012101?\n"))
    assert parse_swipe(got[0][1].text).number == "8000123456" and got[0][0] == "msr"
    port.unplug()
    with pytest.raises(OSError, match="msr is unplugged"):
        port.inject(events_for_text("1\n"))
    port.plug()
    port.inject(events_for_keys(["KEY_1", "KEY_ENTER"]))
    assert got[-1][1].text == "1"


def test_simulated_keypad_gives_actions() -> None:
    got: list = []
    port = InputPort(InputDeviceConfig(role="keypad", keymap={"KEY_F12": "no_sale"}),
                     lambda role, item: got.append(item))
    port.inject(events_for_keys(["KEY_F1", "KEY_KP4", "KEY_F12", "KEY_KPENTER"]))
    assert got == ["member", "digit_4", "no_sale", "enter"]


def test_evdev_backend_needs_match() -> None:
    with pytest.raises(ConfigError, match="backend evdev needs 'match'"):
        InputPort(InputDeviceConfig(backend="evdev", role="msr"), lambda r, i: None)


def test_evdev_hot_plug_on_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="terminal.drivers.input")

    async def scenario() -> list:
        got: list = []
        bus = FakeBus()
        devices, fakes = bus.devices, bus.fakes
        config = InputDeviceConfig(backend="evdev", role="msr", match="0801:0002",
                                   rescan_seconds=0.1, idle_complete_ms=50)
        port = InputPort(config, lambda role, item: got.append(item), discover=bus.discover,
                         open_device=bus.open_device)
        port.start()
        await until(lambda: port.status == "absent", 5, "the first scan to find nothing")
        assert not port.present and port.status == "absent"
        devices.append(READER)  # plugged in
        await until(lambda: port.present, 5, "the reader to be attached")
        assert port.present and fakes[0].grabbed
        fakes[0].send(events_for_text(";8000123456?\n"))
        await until(lambda: len(got) == 1, 5, "the swipe ended by Enter")
        fakes[0].send(events_for_text(";80001234"))  # a reader without Enter
        await until(lambda: len(got) == 2, 5, "the swipe ended by the idle time")
        fakes[0].gone = True
        devices.clear()
        fakes[0].send([])
        await until(lambda: not port.present, 5, "the unplug to be seen")
        # The status says "lost" only until the next rescan (0.1 s here) makes it "absent", which
        # a loaded loop may run first: what the port said at the time is in its log.
        assert not port.present and any(
            "lost" in r.getMessage() for r in caplog.records if r.name == "terminal.drivers.input")
        devices.append(READER)  # back again
        await until(lambda: port.present, 5, "the reader to be attached again")
        assert port.present and len(fakes) == 2
        port.close()
        return got

    got = asyncio.run(scenario())
    assert [(i.text, i.terminated) for i in got] == [(";8000123456?", True), (";80001234", False)]
