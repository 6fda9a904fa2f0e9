"""Printing receipts and opening the drawer, on the printer's own thread.

Every receipt is kept as text (and, in simulation, as a PNG preview) under ``receipts_dir`` by its
id, so the last one and older ones can be reprinted exactly. A print that fails stays in the
printer's pending list (``terminal.drivers.printer``) and the cashier is told; the sale it belongs
to is already committed. A printer unplugged and plugged back in is reopened by its retry timer
and prints the kept receipts by itself; ``reprint`` prints them at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.drivers.document import Document, render_text
from terminal.drivers.drawer import CashDrawer, DrawerError
from terminal.drivers.escpos_paper import preview
from terminal.drivers.printer import Printer, PrintResult

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,63}")


@dataclass(frozen=True)
class Printed:
    receipt_id: str
    text: str
    result: PrintResult


class ReceiptDesk:
    def __init__(self, printer: Printer, drawer: CashDrawer | None, archive: Path | None,
                 png: bool = False) -> None:
        self.printer = printer
        self.drawer = drawer
        self.archive = archive
        self.png = png
        self.width = printer.config.width_chars
        self.executor = printer.executor
        self.last_id: str | None = None
        self.printed: list[Printed] = []  # this session's receipts, for replay output and tests

    async def start(self) -> bool:
        """Open the printer; while it is absent its retry timer keeps trying."""
        return await self.printer.connect()

    @property
    def present(self) -> bool:
        return self.printer.present

    @property
    def health(self) -> str:
        """The printer as the status topic reports it (no I/O)."""
        waiting = f"{self.pending} receipts waiting" if self.pending else ""
        if not self.printer.present:
            return f"{self.printer.state}{'; ' + waiting if waiting else ''}"
        return waiting or "ok"

    @property
    def printer_state(self) -> dict[str, Any]:
        """The printer's state as a code beside :attr:`health`'s words, for HQ to show in its
        reader's language (``Status.printer_state``; no I/O): ``absent`` (not connected: never
        opened, unplugged, switched off), ``offline`` (connected, but it said it is offline:
        cover open, paper jam), ``paper_out`` / ``paper_low`` (as its paper sensor last
        answered), else ``ok``; ``waiting``: the receipts kept for a reprint. The paper and
        offline states are as the printer answered at the last print (or reprint): a roll
        loaded since reads ``ok`` at the next one."""
        status = self.printer.last_status
        if not self.printer.present:
            code = "absent"
        elif status is not None and status.online is False:
            code = "offline"
        elif status is not None and status.paper == "out":
            code = "paper_out"
        elif status is not None and status.paper == "near_end":
            code = "paper_low"
        else:
            code = "ok"
        return {"code": code, "waiting": self.pending}

    async def print(self, doc: Document, receipt_id: str) -> Printed:
        text = render_text(doc, self.width)
        self.last_id = receipt_id
        result = await self.executor.run(self._print_and_keep, doc, receipt_id, text)
        printed = Printed(receipt_id, text, result)
        self.printed.append(printed)
        return printed

    def _print_and_keep(self, doc: Document, receipt_id: str, text: str) -> PrintResult:
        if self.archive is not None and _SAFE_NAME.fullmatch(receipt_id):
            try:
                self.archive.mkdir(parents=True, exist_ok=True)
                (self.archive / f"{receipt_id}.txt").write_text(text, encoding="utf-8")
                if self.png:  # drawn from the bytes the printer is sent: proof of the printout
                    preview(self.printer.render(doc), self.printer.paper_dots).save_png(
                        self.archive / f"{receipt_id}.png")
            except OSError as exc:  # a full disk must not stop the receipt being printed
                log.warning("receipt %s not archived: %s", receipt_id, exc)
        try:
            return self.printer.print_document(doc)
        except Exception as exc:  # a receipt the printer library cannot render: the sale stands
            log.exception("receipt %s could not be rendered", receipt_id)
            return PrintResult(False, 0, f"receipt {receipt_id} could not be printed ({exc}); "
                                         "it is kept as text for a reprint")

    async def archived(self, receipt_id: str) -> list[str] | None:
        """The lines of a receipt printed earlier, or None if none is kept under that id."""
        if self.archive is None or not _SAFE_NAME.fullmatch(receipt_id):
            return None
        path = self.archive / f"{receipt_id}.txt"

        def read() -> list[str] | None:
            try:
                return path.read_text(encoding="utf-8").splitlines()
            except OSError:
                return None
        return await self.executor.run(read)

    @property
    def pending(self) -> int:
        return len(self.printer.pending)

    async def reprint_pending(self) -> list[PrintResult]:
        return await self.executor.run(self.printer.reprint_pending)

    async def open_drawer(self) -> str | None:
        """Kick the drawer; the message for the cashier when it could not be opened."""
        if self.drawer is None:
            return None
        try:
            await self.executor.run(self.drawer.kick)
        except DrawerError as exc:
            log.warning("%s", exc)
            return str(exc)
        return None

    async def close(self) -> None:
        await self.printer.aclose()
