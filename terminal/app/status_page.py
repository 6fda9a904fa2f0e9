"""The terminal's status page: what a technician or HQ's `print_status` command gets on paper."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import datetime

from terminal import __version__
from terminal.drivers.document import Document


def local_address() -> str:
    """The address other machines reach this box at (no packet is sent: UDP connect only)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only picks the interface
        return str(probe.getsockname()[0])
    except OSError:
        return "no network"
    finally:
        probe.close()


def status_page(store: str, terminal: str, rule_version: int, devices: Mapping[str, str],
                now: datetime, broker: str = "") -> Document:
    doc = Document().title("posterm").line(f"{store} / {terminal}", "center")
    doc.separator()
    rows = {
        "store": store,
        "terminal": terminal,
        "address": local_address(),
        "broker": broker or "none (standalone)",
        "software": __version__,
        "rules": f"v{rule_version}" if rule_version else "local file",
        "printed": now.strftime("%Y-%m-%d %H:%M"),
    }
    for name, value in rows.items():
        doc.columns(name, value, weights=(1, 2), aligns="lr")
    doc.separator()
    for name, state in sorted(devices.items()):
        doc.columns(name, state, weights=(1, 2), aligns="lr")
    return doc.separator().qr(f"{store}/{terminal}").feed(2).cut()
