"""The daemon's configuration: one strict TOML file, loaded once at start and passed down.

Every section is a frozen dataclass (``terminal.core.configfile``): an unknown or misspelt key, a
wrong type or a value out of range stops start-up with the file, the section and the key named. The
device sections reuse the drivers' own config classes. ``[broker]`` and ``[hq]`` (as
``posterm provision`` writes them) switch the MQTT link to HQ on; without them the terminal's own
ledger is the authority.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminal.core.configfile import ConfigError, load_section, load_toml, section_from, setting

# The drivers' config classes alone: checking a config loads none of what the drivers run on.
from terminal.drivers.settings import (
    DrawerConfig,
    InputDeviceConfig,
    LcdConfig,
    PoleConfig,
    PrinterConfig,
)

SECTIONS = ("terminal", "paths", "loyalty", "input", "printer", "drawer", "pole", "lcd", "broker",
            "hq")


@dataclass(frozen=True)
class TerminalSection:
    store: str = setting(doc="store code, as HQ names it (letters, digits, - and _)")
    terminal_id: str = setting(doc="this terminal's id within the store")


@dataclass(frozen=True)
class PathsSection:
    state_dir: str = setting("/var/lib/posterm", doc="where the terminal keeps its state")
    database: str = setting("", doc="the SQLite ledger (default: {state_dir}/ledger.db)")
    receipts_dir: str = setting("", doc="receipts kept for reprints (default: "
                                        "{state_dir}/receipts)")


@dataclass(frozen=True)
class LoyaltySection:
    rules_file: str = setting("", doc="the rules TOML (default: {state_dir}/rules.toml)")
    card_key_file: str = setting("", doc="the chain's card key, 16 bytes or more (default: "
                                         "{state_dir}/credentials/card.key)")
    pin_key_file: str = setting("", doc="this terminal's secret for operators' PIN hashes, "
                                        "made on first start (default: "
                                        "{state_dir}/credentials/pin.key)")
    catalogue_file: str = setting("", doc="optional TOML catalogue ([[product]] sku, name, "
                                          "price_fen, barcode, category): the first start's "
                                          "seed; HQ's signed catalogue, once held, wins")
    departments: tuple[str, ...] = setting(
        ("", ""), doc="the category each department key (department_1, _2, ...) sells under")
    receipt_png: bool = setting(False, doc="also keep a PNG preview of each receipt")


@dataclass(frozen=True)
class BrokerSection:
    host: str = setting(doc="the MQTT broker's host name or address")
    ca_file: str = setting(doc="the broker's CA certificate (PEM)")
    cert_file: str = setting(doc="this terminal's client certificate, CN {store}/{terminal_id}")
    key_file: str = setting(doc="this terminal's private key")
    port: int = setting(8883, doc="the broker's TLS port", min=1, max=65535)
    topic_root: str = setting("posterm/v1", doc="the root of the topic scheme")
    request_timeout: float = setting(
        1.5, doc="seconds the till waits for HQ's answer to a member lookup or hold before it "
                 "counts HQ as unreachable", min=0.2, max=10)


@dataclass(frozen=True)
class HqSection:
    root_public_key_file: str = setting(doc="HQ's Ed25519 root key: bundles must chain to it")
    revoked_keys: tuple[str, ...] = setting((), doc="signing key ids HQ has revoked")


@dataclass(frozen=True)
class Config:
    source: str
    terminal: TerminalSection
    paths: PathsSection
    loyalty: LoyaltySection
    printer: PrinterConfig
    drawer: DrawerConfig
    pole: PoleConfig
    lcd: LcdConfig | None  # None: no [lcd] section, no LCD fitted
    inputs: Mapping[str, InputDeviceConfig] = field(default_factory=dict)
    broker: BrokerSection | None = None
    hq: HqSection | None = None

    def _path(self, value: str, default: str) -> Path:
        return Path(value) if value else Path(self.paths.state_dir) / default

    @property
    def database(self) -> Path:
        return self._path(self.paths.database, "ledger.db")

    @property
    def receipts_dir(self) -> Path:
        return self._path(self.paths.receipts_dir, "receipts")

    @property
    def rules_file(self) -> Path:
        return self._path(self.loyalty.rules_file, "rules.toml")

    @property
    def card_key_file(self) -> Path:
        return self._path(self.loyalty.card_key_file, "credentials/card.key")

    @property
    def pin_key_file(self) -> Path:
        return self._path(self.loyalty.pin_key_file, "credentials/pin.key")


def parse_config(data: Mapping[str, Any], source: str) -> Config:
    """Build the config from parsed TOML; ``source`` names the file in every error."""
    for name in data:
        if name not in SECTIONS:
            close = difflib.get_close_matches(name, SECTIONS, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise ConfigError(f"{source}: unknown section [{name}]{hint}; known sections: "
                              f"{', '.join(SECTIONS)}")
    if "terminal" not in data:
        raise ConfigError(f"{source}: missing section [terminal] (store, terminal_id)")
    inputs_table = data.get("input", {})
    if not isinstance(inputs_table, Mapping):
        raise ConfigError(f"{source} [input]: expected tables such as [input.reader]")
    inputs = {name: load_section(InputDeviceConfig, table, f"{source} [input.{name}]")
              for name, table in inputs_table.items()}
    if ("broker" in data) != ("hq" in data):
        raise ConfigError(f"{source}: [broker] and [hq] go together: the link to HQ needs the "
                          "broker to reach and HQ's key to trust")
    return Config(
        source=source,
        terminal=section_from(data, "terminal", TerminalSection, source),
        paths=section_from(data, "paths", PathsSection, source),
        loyalty=section_from(data, "loyalty", LoyaltySection, source),
        printer=section_from(data, "printer", PrinterConfig, source),
        drawer=section_from(data, "drawer", DrawerConfig, source),
        pole=section_from(data, "pole", PoleConfig, source),
        lcd=section_from(data, "lcd", LcdConfig, source) if "lcd" in data else None,
        inputs=inputs,
        broker=section_from(data, "broker", BrokerSection, source) if "broker" in data else None,
        hq=section_from(data, "hq", HqSection, source) if "hq" in data else None,
    )


def load_config(path: str | Path) -> Config:
    return parse_config(load_toml(path), str(path))
