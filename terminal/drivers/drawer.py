"""Cash drawer on the printer's drawer-kick connector (ESC p), pin 2 or 5."""

from __future__ import annotations

from terminal.drivers.printer import Printer
from terminal.drivers.settings import DrawerConfig


class DrawerError(OSError):
    """The drawer could not be kicked; the message says why and what to try."""


class CashDrawer:
    def __init__(self, config: DrawerConfig, printer: Printer) -> None:
        self.config = config
        self.printer = printer

    def kick(self) -> None:
        if not self.config.enabled:
            raise DrawerError("no cash drawer is configured ([drawer] enabled = false)")
        try:
            self.printer.kick_drawer(self.config.pin, self.config.pulse_ms)
        except OSError as exc:
            raise DrawerError(f"drawer not kicked, the printer is unreachable: {exc}") from None

    def is_open(self) -> bool | None:
        """True/False where the printer reports the drawer switch (pin 3), else None."""
        return self.printer.status().drawer_open


def open_drawer(config: DrawerConfig, printer: Printer) -> CashDrawer:
    return CashDrawer(config, printer)
