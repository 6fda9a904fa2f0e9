"""Receipt printer through python-escpos: USB, serial, network (9100), file or simulated.

A print never blocks the sale on the printer: when the printer is off, unplugged or out of paper
the document stays in :attr:`Printer.pending` and :meth:`Printer.reprint_pending` sends it later
(DESIGN promise 8); a printer that was lost is reopened by a retry timer and prints what was kept
as soon as it is back. Calls block on I/O; the app runs them on :attr:`Printer.executor`.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from typing import Any, Literal

from terminal.drivers.document import DOT_PER_CHAR, Document, render_escpos
from terminal.drivers.escpos_setup import prepare_escpos
from terminal.drivers.reconnect import OutputDevice
from terminal.drivers.settings import PrinterConfig

log = logging.getLogger(__name__)

Paper = Literal["ok", "near_end", "out", "unknown"]

# DLE EOT n real-time status (ESC/POS): n=1 printer, n=4 paper roll sensor.
_DLE_EOT_PRINTER = b"\x10\x04\x01"
_DLE_EOT_PAPER = b"\x10\x04\x04"
_FIXED_BITS = 0x12  # bits 1 and 4 are always set in a status byte
_OFFLINE = 0x08
_DRAWER_PIN3 = 0x04
_NEAR_END = 0x0C
_PAPER_OUT = 0x60


@dataclass(frozen=True)
class PrinterStatus:
    online: bool | None  # None: the printer does not answer status queries
    paper: Paper
    drawer_open: bool | None
    detail: str


@dataclass(frozen=True)
class PrintResult:
    printed: bool
    job: int
    message: str


class SimulatedEscpos:
    """The dummy back-end: python-escpos' ``Dummy`` recording bytes, answering DLE EOT like a
    real printer, with switches for paper, power and cable that tests and doctor flip."""

    def __new__(cls, profile: str = "default") -> Any:
        prepare_escpos()
        from escpos.printer import Dummy

        class _Simulated(Dummy):  # built lazily: escpos is heavy to import
            def __init__(self) -> None:
                super().__init__(profile=profile)
                self.online = True
                self.connected = True
                self.paper: Paper = "ok"
                self.drawer_open = False
                self._answers: list[bytes] = []

            def _raw(self, msg: bytes) -> None:
                if not self.connected:
                    raise OSError("simulated printer unplugged")
                super()._raw(msg)
                if msg == _DLE_EOT_PRINTER:
                    self._answers.append(bytes([_FIXED_BITS | _OFFLINE * (not self.online)
                                                | _DRAWER_PIN3 * self.drawer_open]))
                elif msg == _DLE_EOT_PAPER:
                    bits = {"ok": 0, "near_end": _NEAR_END, "out": _NEAR_END | _PAPER_OUT}
                    self._answers.append(bytes([_FIXED_BITS | bits.get(self.paper, 0)]))

            def _read(self) -> bytes:
                return self._answers.pop(0) if self._answers and self.online else b""

            def open(self, raise_not_found: bool = True) -> None:
                if not self.connected:
                    raise OSError("simulated printer unplugged")

            def close(self) -> None:
                """The connection goes; the printer (and what it printed) stays."""

        return _Simulated()


def _open_backend(config: PrinterConfig) -> Any:
    prepare_escpos()
    from escpos import printer as escpos_printer

    backend = config.backend
    if backend == "usb":
        device = escpos_printer.Usb(config.usb_vendor, config.usb_product,
                                    timeout=int(config.timeout * 1000), profile=config.profile)
    elif backend == "serial":
        device = escpos_printer.Serial(config.serial_port, config.baudrate,
                                       timeout=config.timeout, profile=config.profile)
    elif backend == "network":
        device = escpos_printer.Network(config.host, config.port, timeout=config.timeout,
                                        profile=config.profile)
    else:
        device = escpos_printer.File(config.file_path, profile=config.profile)
    device.open()
    return device


_FIXES = {
    "usb": "check the USB cable and power; `lsusb` should list {usb_vendor:04x}:{usb_product:04x}",
    "serial": "check the cable and that {serial_port} exists at {baudrate} baud",
    "network": "check the printer is on and reachable: `nc -zv {host} {port}`",
    "file": "check {file_path} exists and the posterm user may write to it (group lp)",
}
_PAPER_FIXES = {
    "out": "out of paper: load a new roll and close the cover",
    "near_end": "paper low: change the roll soon",
}


class Printer(OutputDevice):
    """Prints on its own thread (:attr:`executor`). A lost printer is reopened by the retry
    timer of :class:`OutputDevice`, and the receipts kept meanwhile print once it is back."""

    kind = "printer"

    def __init__(self, config: PrinterConfig) -> None:
        super().__init__("printer")
        self.config = config
        self.pending: list[tuple[int, Document]] = []
        self.simulator: Any = None  # the dummy back-end's printer, kept across reconnects
        self._device: Any = None
        self._jobs = 0
        self.last_status: PrinterStatus | None = None  # as the printer last answered

    @property
    def device(self) -> Any:
        """The python-escpos object (the simulated one exposes ``output``, ``paper`` ...)."""
        return self._device

    @property
    def captured(self) -> bytes:
        """Every byte sent so far, for the dummy back-end."""
        return bytes(self.simulator.output) if self.simulator is not None else b""

    @property
    def last_error(self) -> str:
        return "" if self.present else f"{self.config.backend} printer {self.state}"

    def fix_hint(self) -> str:
        """What to do, naming what is wrong now: the printer's own status when it answers, else
        the error that made it absent (its cable, its address, or a file posterm needs)."""
        status = self.last_status
        if self.present and status is not None:
            if status.online is False:
                return ("the printer reports itself offline: close the cover, clear any paper "
                        "jam, then switch it off and on")
            if status.paper in _PAPER_FIXES:
                return _PAPER_FIXES[status.paper]
            if status.online is None and self.config.read_status:
                return ("the printer does not answer status queries: switch it off and on; "
                        "if it never answers, set [printer] read_status = false")
        cause = self.cause
        if self.config.backend == "dummy":
            if self.simulator is not None and not self.simulator.connected:
                return "the simulated printer is unplugged (by a test or script): plug it back in"
            return f"the simulated printer failed: {cause}" if cause else "none needed"
        device = {"file": self.config.file_path, "serial": self.config.serial_port}
        missing = getattr(cause, "filename", None)
        if isinstance(cause, OSError) and missing and str(missing) != device.get(
                self.config.backend):
            return (f"posterm cannot use {missing} ({cause.strerror}); the printer itself "
                    "was not reached")
        return _FIXES[self.config.backend].format(**vars(self.config))

    def _errors(self) -> tuple[type[Exception], ...]:
        prepare_escpos()
        from escpos.exceptions import Error as EscposError

        # ValueError: a bad port name, or a write to a file back-end already closed.
        return (OSError, EscposError, ValueError)

    def _open(self) -> None:
        if self.config.backend == "dummy":
            if self.simulator is None:
                self.simulator = SimulatedEscpos(self.config.profile)
            self.simulator.open()
            self._device = self.simulator
        else:
            self._device = _open_backend(self.config)

    def _release(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(Exception):  # closing a vanished device must not raise
                device.close()

    def _returned(self) -> None:
        if self.pending:
            results = self.reprint_pending()
            log.info("printer back: %d of %d kept receipts printed",
                     sum(r.printed for r in results), len(results))

    def status(self) -> PrinterStatus:
        self.last_status = self._status()
        return self.last_status

    def _status(self) -> PrinterStatus:
        if self._device is None:
            return PrinterStatus(False, "unknown", None, self.last_error)
        if not self.config.read_status:
            return PrinterStatus(None, "unknown", None, "status read-back disabled in config")
        if self.config.backend == "file":  # write-only: a query would land in the file
            return PrinterStatus(None, "unknown", None, "a file back-end cannot report status")
        try:
            state = self._query(_DLE_EOT_PRINTER)
            paper = self._query(_DLE_EOT_PAPER)
        except self._errors() as exc:
            self._lost(exc)
            return PrinterStatus(False, "unknown", None, self.last_error)
        if state is None:
            return PrinterStatus(None, "unknown", None, "the printer does not answer status")
        online = not state & _OFFLINE
        drawer_open = bool(state & _DRAWER_PIN3)
        if paper is None:
            return PrinterStatus(online, "unknown", drawer_open, "no paper sensor answer")
        level: Paper = ("out" if paper & _PAPER_OUT == _PAPER_OUT
                        else "near_end" if paper & _NEAR_END else "ok")
        detail = {"ok": "ready", "near_end": "paper low: change the roll soon",
                  "out": "out of paper: load a new roll"}[level]
        return PrinterStatus(online, level, drawer_open, detail if online else "printer offline")

    def _query(self, command: bytes) -> int | None:
        # A status byte always has bits 1 and 4 set; anything else is no answer.
        with contextlib.redirect_stdout(io.StringIO()):
            answer = self._device.query_status(command)
        if len(answer) != 1 or answer[0] & 0x93 != _FIXED_BITS:
            return None
        return answer[0]

    def render(self, doc: Document) -> bytes:
        """The exact bytes a print of ``doc`` sends (what the preview is drawn from)."""
        return render_escpos(doc, self.config.width_chars, self.config.encoding,  # type: ignore[arg-type]
                             self.config.profile, self.config.cjk_fallback)  # type: ignore[arg-type]

    @property
    def paper_dots(self) -> int:
        return self.config.width_chars * DOT_PER_CHAR

    def print_document(self, doc: Document) -> PrintResult:
        self._jobs += 1
        return self._print(self._jobs, doc)

    def reprint_pending(self) -> list[PrintResult]:
        """Send kept documents in order; stop at the first that fails again (it stays kept).

        Asked for by the cashier, so an absent printer is tried at once, not at the next tick.
        """
        if self._device is None and self.pending:
            self._start()
        results = []
        while self.pending:
            job, doc = self.pending.pop(0)
            result = self._print(job, doc)
            results.append(result)
            if not result.printed:
                break
        return results

    def kick_drawer(self, pin: int, pulse_ms: int) -> None:
        """ESC p: pulse the drawer connector pin 2 or 5 for ``pulse_ms`` (2 ms units, max 510)."""
        if pin not in (2, 5):
            raise ValueError(f"the drawer is on connector pin 2 or 5, not {pin}")
        if not 2 <= pulse_ms <= 510:
            raise ValueError(f"drawer pulse must be 2-510 ms, not {pulse_ms}")
        if self._device is None:
            raise OSError(self.last_error)
        on = pulse_ms // 2
        try:
            self._device.cashdraw([27, 112, 0 if pin == 2 else 1, on, min(255, on * 2)])
        except self._errors() as exc:
            self._lost(exc)
            raise OSError(self.last_error) from None

    def _print(self, job: int, doc: Document) -> PrintResult:
        status = self.status()  # an absent printer is not opened here: the retry timer does
        refusal = ("printer not connected" if self._device is None
                   else "printer offline" if status.online is False
                   else "out of paper" if status.paper == "out" else "")
        if not refusal:
            data = self.render(doc)
            try:
                self._device._raw(data)
            except self._errors() as exc:
                self._lost(exc)
                refusal = "printer unplugged or off"
        if refusal:
            self.pending.append((job, doc))
            log.warning("receipt %d kept for reprint: %s", job, refusal)
            return PrintResult(False, job, f"{refusal}: receipt kept, reprint when fixed")
        return PrintResult(True, job, "printed")


def open_printer(config: PrinterConfig) -> Printer:
    return Printer(config)
