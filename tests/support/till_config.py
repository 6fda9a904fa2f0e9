"""The daemon config of a till on simulated hardware, as the tests build it (one shape for all)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal.core.configfile import to_toml
from terminal.daemon.sim.demo import HERE as SIM_DIR
from tests.support.shared import EXAMPLES


def till_config_data(
    state_dir: Path,
    card_key_file: Path,
    store: str = "S001",
    terminal: str = "T01",
    *,
    mqtt: tuple[Any, Any, Path] | None = None,
    receipt_png: bool = False,
    devices: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Keypad, card reader and scanner simulated, a dummy 58 mm printer, a pty pole display;
    ``devices`` adds or replaces sections. ``mqtt`` is (broker, client TLS files, HQ root key):
    the till then links to HQ through that broker."""
    data: dict[str, dict[str, Any]] = {
        "terminal": {"store": store, "terminal_id": terminal},
        "paths": {"state_dir": str(state_dir)},
        "loyalty": {"rules_file": str(EXAMPLES / "rules.toml"),
                    "card_key_file": str(card_key_file),
                    "catalogue_file": str(SIM_DIR / "demo_catalogue.toml"),
                    "departments": ["fresh", "household"], "receipt_png": receipt_png},
        "input": {name: {"backend": "simulated", "role": role}
                  for name, role in (("reader", "msr"), ("scanner", "scanner"),
                                     ("keypad", "keypad"))},
        "printer": {"backend": "dummy", "paper_mm": 58},
        "pole": {"backend": "pty"},
        **(devices or {}),
    }
    if mqtt is not None:
        broker, files, root_pub = mqtt
        # HQ answers in milliseconds here; the longer timeout keeps a loaded CI machine from
        # turning a slow answer into "HQ unreachable" (the field default is 1.5 s).
        data["broker"] = {"host": broker.host, "port": broker.port, "ca_file": str(files.ca),
                          "cert_file": str(files.cert), "key_file": str(files.key),
                          "request_timeout": 5.0}
        data["hq"] = {"root_public_key_file": str(root_pub)}
    return data


# The fewest devices a till starts with: a keypad (simulated) and a printer (dummy).
KEYPAD_AND_PRINTER: dict[str, dict[str, Any]] = {
    "input": {"keypad": {"backend": "simulated", "role": "keypad"}},
    "printer": {"backend": "dummy"},
}


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as the TOML file ``path`` (as provisioning or a technician would leave it)."""
    path.write_text(to_toml(data), encoding="utf-8")
    return path
