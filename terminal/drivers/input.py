"""Card readers, scanners and keypads through evdev: find by stable identity, grab, read on the
loop with ``add_reader``, and survive unplug/re-plug by rescanning (Odoo IoT: detect, then claim).

Every event, real or injected by the simulated back-end, goes through :meth:`InputPort.feed`, the
same decoding path: wedge devices (``msr``, ``scanner``) yield :class:`WedgeInput`, the keypad
yields action names from the keymap.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from evdev import InputEvent, ecodes

from terminal.core.configfile import ConfigError
from terminal.drivers.keymap import KeypadMapper, load_keymap
from terminal.drivers.keys import KeyDecoder, WedgeAssembler, WedgeInput
from terminal.drivers.layouts import get_layout
from terminal.drivers.settings import InputDeviceConfig

log = logging.getLogger(__name__)

_VID_PID = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class SeenDevice:
    path: str
    name: str
    vendor: int
    product: int
    stable_path: str | None  # its /dev/input/by-id link, if any


def device_matches(match: str, device: SeenDevice) -> bool:
    if not match:
        raise ConfigError("input device: 'match' is empty; give a by-id path, vid:pid or name")
    if match.startswith("/"):
        return os.path.realpath(match) == os.path.realpath(device.path)
    ids = _VID_PID.fullmatch(match)
    if ids:
        return (device.vendor, device.product) == (int(ids[1], 16), int(ids[2], 16))
    # A name pattern, or several separated by "|" (any of them matches).
    name = device.name.lower()
    return any(fnmatch.fnmatchcase(name, pattern.strip())
               for pattern in match.lower().split("|") if pattern.strip())


def guess_role(name: str, key_codes: Iterable[int]) -> str | None:
    """The role a device would most plausibly take, for ``posterm doctor``'s listing."""
    lowered = name.lower()
    keys = set(key_codes)
    if any(word in lowered for word in ("msr", "magnetic", "card reader", "swipe", "magtek")):
        return "msr"
    if any(word in lowered for word in ("scan", "barcode", "honeywell", "symbol", "zebra",
                                        "datalogic", "newland")):
        return "scanner"
    if ecodes.KEY_KP5 in keys and ecodes.KEY_Q not in keys:
        return "keypad"
    if ecodes.KEY_Q in keys:
        return "keypad" if "keypad" in lowered else None  # a full keyboard: no till role
    return None


def list_input_devices() -> list[SeenDevice]:
    """Every evdev device this process may open (empty where /dev/input does not exist)."""
    from evdev import InputDevice, list_devices

    by_id = _by_id_links()
    seen = []
    for path in list_devices():
        try:
            device = InputDevice(path)
        except OSError:
            continue
        with contextlib.closing(device):
            seen.append(SeenDevice(path, device.name, device.info.vendor, device.info.product,
                                   by_id.get(os.path.realpath(path))))
    return seen


def _by_id_links() -> dict[str, str]:
    folder = "/dev/input/by-id"
    if not os.path.isdir(folder):
        return {}
    return {os.path.realpath(os.path.join(folder, n)): os.path.join(folder, n)
            for n in os.listdir(folder)}


InputHandler = Callable[[str, "WedgeInput | str"], None]


class InputPort:
    """One configured input device. ``present`` says whether it is attached right now."""

    def __init__(
        self,
        config: InputDeviceConfig,
        on_input: InputHandler,
        *,
        discover: Callable[[], list[SeenDevice]] = list_input_devices,
        open_device: Callable[[str], Any] | None = None,
    ) -> None:
        if config.backend == "evdev" and not config.match:
            raise ConfigError(f"[input] {config.role}: backend evdev needs 'match'")
        self.config = config
        self.on_input = on_input
        self.present = config.backend == "simulated"
        self.status = "simulated" if self.present else "not started"
        self._discover = discover
        self._open_device = open_device
        self._device: Any = None
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        decoder = KeyDecoder(get_layout(config.layout), numlock=config.numlock)
        self._assembler = WedgeAssembler(decoder, max_burst_gap=config.max_burst_gap_ms / 1000,
                                         idle_complete=config.idle_complete_ms / 1000)
        self._mapper = KeypadMapper(load_keymap(config.keymap))

    # --- decoding, shared by every back-end ---

    def feed(self, event: InputEvent) -> None:
        if self.config.role == "keypad":
            action = self._mapper.feed(event)
            if action is not None:
                self.on_input(self.config.role, action)
            return
        done = self._assembler.feed(event)
        if done is not None:
            self.on_input(self.config.role, done)
        elif self._assembler.pending:
            self._schedule_expiry()

    def expire(self, now: float) -> None:
        done = self._assembler.expire(now)
        if done is not None:
            self.on_input(self.config.role, done)

    def inject(self, events: Iterable[InputEvent]) -> None:
        """Simulated back-end: events as the device would deliver them."""
        if not self.present:
            raise OSError(f"{self.config.role} is unplugged")
        for event in events:
            self.feed(event)

    def unplug(self) -> None:
        self._lost("simulated unplug")

    def plug(self) -> None:
        """Simulated back-end: the device came back."""
        self.present, self.status = True, "simulated"

    # --- evdev back-end ---

    def start(self) -> None:
        if self.config.backend == "evdev":
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            if self._device is None:
                self._try_attach()
            await asyncio.sleep(self.config.rescan_seconds)

    def _try_attach(self) -> None:
        try:
            candidates = [d for d in self._discover() if device_matches(self.config.match, d)]
        except OSError as exc:
            self.status = f"cannot list input devices: {exc}"
            return
        if not candidates:
            if self.status != "absent":
                log.warning("%s %r not found; waiting for it", self.config.role, self.config.match)
            self.status = "absent"
            return
        seen = candidates[0]
        try:
            device = self._open(seen.path)
            if self.config.grab:
                device.grab()
        except OSError as exc:
            self.status = f"found {seen.path} but cannot open it: {exc}"
            log.warning("%s: %s", self.config.role, self.status)
            return
        self._device = device
        self.present = True
        self.status = f"attached {seen.stable_path or seen.path} ({seen.name})"
        asyncio.get_running_loop().add_reader(device.fd, self._readable)
        log.info("%s %s", self.config.role, self.status)

    def _open(self, path: str) -> Any:
        if self._open_device is not None:
            return self._open_device(path)
        from evdev import InputDevice

        return InputDevice(path)

    def _readable(self) -> None:
        try:
            for event in self._device.read():
                self.feed(event)
        except BlockingIOError:
            return
        except OSError as exc:  # ENODEV: unplugged
            self._lost(str(exc))

    def _schedule_expiry(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # fed outside a loop (tests, replay): the caller calls expire()
        if self._expiry is not None:
            self._expiry.cancel()
        delay = self.config.idle_complete_ms / 1000
        self._expiry = loop.call_later(delay, lambda: self.expire(float("inf")))

    def _lost(self, reason: str) -> None:
        if self._device is not None:
            with contextlib.suppress(Exception):  # the device node is already gone
                asyncio.get_running_loop().remove_reader(self._device.fd)
                self._device.close()
            self._device = None
        self.present = False
        self.status = f"lost ({reason}); waiting for it to return"
        log.warning("%s %s", self.config.role, self.status)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        if self._device is not None:
            self._lost("closed")


def open_input(config: InputDeviceConfig, on_input: InputHandler) -> InputPort:
    return InputPort(config, on_input)
