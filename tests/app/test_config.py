"""The daemon's config: strict, with file, section and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.core.configfile import ConfigError
from terminal.daemon.config import load_config, parse_config

BASE = {"terminal": {"store": "S001", "terminal_id": "T01"}}


def test_defaults_follow_the_state_dir() -> None:
    config = parse_config({**BASE, "paths": {"state_dir": "/srv/t"}}, "t.toml")
    assert config.database == Path("/srv/t/ledger.db")
    assert config.card_key_file == Path("/srv/t/credentials/card.key")
    assert config.lcd is None and config.printer.backend == "dummy"


@pytest.mark.parametrize(("data", "words"), [
    ({**BASE, "pole": {"colums": 20}}, "t.toml [pole]: unknown key 'colums' (did you mean "
                                       "'columns'?)"),
    ({**BASE, "printr": {}}, "t.toml: unknown section [printr] (did you mean [printer]?)"),
    ({**BASE, "input": {"reader": {"role": "reader"}}}, "t.toml [input.reader] role"),
    ({"paths": {}}, "missing section [terminal]"),
    ({"terminal": {"store": "S001"}}, "missing required key 'terminal_id'"),
    ({**BASE, "loyalty": {"rules": "x"}}, "t.toml [loyalty]: unknown key 'rules'"),
])
def test_bad_config_names_file_section_and_key(data: dict, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "t.toml")
    assert words in str(caught.value)


def test_provisioned_sections_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "posterm.toml"
    # The shape `posterm provision` writes (terminal/field/provision.py daemon_config).
    path.write_text('[terminal]\nstore = "S001"\nterminal_id = "T01"\n'
                    '[broker]\nhost = "m"\nport = 8883\nca_file = "/c/ca.pem"\n'
                    'cert_file = "/c/t.crt"\nkey_file = "/c/t.key"\n'
                    '[hq]\nroot_public_key_file = "/x"\n[input.keypad]\nrole = "keypad"\n')
    config = load_config(path)
    assert config.broker is not None and config.broker.host == "m"
    assert config.hq is not None and config.hq.root_public_key_file == "/x"
    assert "keypad" in config.inputs


def test_broker_without_hq_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[broker\] and \[hq\] go together"):
        parse_config({"terminal": {"store": "S", "terminal_id": "T"},
                      "broker": {"host": "m", "ca_file": "a", "cert_file": "b", "key_file": "c"}},
                     "t.toml")


def test_misspelt_broker_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\[broker\].*hots"):
        parse_config({"terminal": {"store": "S", "terminal_id": "T"},
                      "broker": {"hots": "m"}, "hq": {"root_public_key_file": "/x"}}, "t.toml")
