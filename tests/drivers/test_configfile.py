from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest

from terminal.core.configfile import (
    ConfigError,
    describe,
    load_section,
    load_toml,
    section_from,
    setting,
    to_toml,
)


@dataclass(frozen=True)
class Sample:
    backend: str = setting("dummy", doc="which back-end", choices=("usb", "dummy"))
    width_mm: int = setting(80, doc="paper width", choices=(58, 80))
    pulse_ms: int = setting(100, doc="pulse", min=10, max=500)
    timeout: float = setting(1.0, doc="seconds", min=0.1)
    port: str | None = setting(None, doc="serial port")
    codes: tuple[str, ...] = setting((), doc="codes")
    keymap: Mapping[str, str] = setting(None, doc="overrides")  # type: ignore[assignment]
    enabled: bool = setting(True, doc="on")


WHERE = "posterm.toml [printer]"


def test_defaults_and_values() -> None:
    built = load_section(Sample, {"backend": "usb", "timeout": 2, "codes": ["a"]}, WHERE)
    assert built.backend == "usb" and built.timeout == 2.0 and built.codes == ("a",)
    assert built.pulse_ms == 100 and built.port is None
    with pytest.raises(FrozenInstanceError):
        built.backend = "dummy"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"backnd": "usb"}, "unknown key 'backnd' (did you mean 'backend'?)"),
        ({"backend": "lpt"}, "[printer] backend: 'lpt' is not one of 'usb', 'dummy'"),
        ({"pulse_ms": 5}, "pulse_ms: 5 is below the minimum 10"),
        ({"pulse_ms": 900}, "pulse_ms: 900 is above the maximum 500"),
        ({"pulse_ms": "100"}, "pulse_ms: expected an integer"),
        ({"pulse_ms": True}, "pulse_ms: expected an integer"),
        ({"timeout": "fast"}, "timeout: expected a number"),
        ({"enabled": 1}, "enabled: expected true/false"),
        ({"codes": "abc"}, "codes: expected a list"),
        ({"codes": [1]}, "codes[0]: expected a string"),
        ({"keymap": ["x"]}, "keymap: expected a table"),
        ({"port": 3}, "port: expected a string"),
    ],
)
def test_bad_values_name_file_section_key(mapping: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_section(Sample, mapping, WHERE)
    assert str(caught.value).startswith("posterm.toml [printer]")
    assert fragment in str(caught.value)


def test_required_key_is_reported() -> None:
    @dataclass(frozen=True)
    class Needs:
        path: str = setting(doc="where the file is")

    with pytest.raises(ConfigError, match=r"missing required key 'path' \(where the file is\)"):
        load_section(Needs, {}, WHERE)


def test_toml_file_and_sections(tmp_path: Path) -> None:
    config = tmp_path / "posterm.toml"
    config.write_text('[printer]\nbackend = "usb"\n[input.reader]\nbackend = "dummy"\n')
    data = load_toml(config)
    assert section_from(data, "printer", Sample, str(config)).backend == "usb"
    assert section_from(data, "input.reader", Sample, str(config)).backend == "dummy"
    assert section_from(data, "absent", Sample, str(config)) == Sample()
    config.write_text("[printer\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(config)
    with pytest.raises(ConfigError, match="no such config file"):
        load_toml(tmp_path / "missing.toml")


def test_describe_lists_documentation() -> None:
    rows = {row[0]: row for row in describe(Sample)}
    assert rows["pulse_ms"] == ("pulse_ms", "int", 100, "pulse")


def test_to_toml_reads_back_what_it_wrote_whatever_the_text() -> None:
    data = {"terminal": {"store": "S001", "name": '王小明 "quoted" \\ back\nline\ttab 🎉'},
            "input": {"keypad": {"backend": "evdev", "match": "*keypad*", "keymap": ["a", "b"]}},
            "loyalty": {"departments": [], "receipt_png": False, "rate": 0.5, "width": 58}}
    assert tomllib.loads(to_toml(data)) == data
