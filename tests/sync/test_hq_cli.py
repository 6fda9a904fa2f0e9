"""`posterm-hq keygen`, `bundle build` and `bundle push`, end to end."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminal.hq.cli import main
from terminal.hq.keygen import load_public
from terminal.sync import bundle
from terminal.sync.topics import Topics
from tests.sync.conftest import Inbox, mqtt_client, run


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    assert main(["keygen", str(tmp_path / "keys"), "--days", "30"]) == 0
    return tmp_path / "keys"


def trust(keys: Path) -> bundle.TrustStore:
    return bundle.TrustStore.of([load_public(keys / "root.pub")])


def test_keygen_keeps_secrets_private_and_rotates(keys: Path) -> None:
    for name in ("root.key", "signing.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    first = json.loads((keys / "delegation.json").read_bytes())
    root_before = (keys / "root.key").read_bytes()
    assert main(["keygen", str(keys)]) == 0
    assert (keys / "root.key").read_bytes() == root_before  # the root key is never replaced
    assert json.loads((keys / "delegation.json").read_bytes()) != first
    assert len(list(keys.glob("signing-*.key"))) == 2


def test_build_from_the_shared_rules_verifies_on_a_terminal(examples: Path, keys: Path,
                                                            tmp_path: Path) -> None:
    pytest.importorskip("terminal.loyalty.rules")
    catalogue = tmp_path / "products.csv"
    catalogue.write_text("sku,name,price_fen,category\n6901234567892,Tea,1250,fresh\n")
    out = tmp_path / "b.json"
    assert main(["bundle", "build", str(examples / "rules.toml"), "--catalogue", str(catalogue),
                 "--scope", "store/S001", "--version", "3", "--expires", "30d",
                 "--keys", str(keys), "-o", str(out)]) == 0
    from terminal.hq.bundles import assemble

    got = bundle.verify_bundle(assemble(out), trust(keys), {"chain", "store/S001"}, 2,
                               datetime.now(UTC), True)
    assert got.version == 3
    assert got.payload["catalogue"] == [{"sku": 6901234567892, "name": "Tea", "price_fen": 1250,
                                         "category": "fresh"}]
    assert got.payload["rules"]["earn"]["category"][1]["multiplier"] == "1.5"
    assert got.payload["rules"]["earn"]["promotion"][0]["from"] == "2026-10-01T00:00:00+08:00"


def test_build_refuses_bad_rules_naming_the_key(examples: Path, keys: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("terminal.loyalty.rules")
    bad = tmp_path / "rules.toml"
    bad.write_text((examples / "rules.toml").read_text().replace(
        "points_per_yuan = 1 ", 'points_per_yuan = "lots" ', 1))
    out = tmp_path / "b.json"
    assert main(["bundle", "build", str(bad), "--scope", "chain", "--version", "1",
                 "--expires", "30d", "--keys", str(keys), "-o", str(out)]) == 1
    assert "points_per_yuan" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--scope", "store/S 1", "store id"),
    ("--expires", "next week", "--expires"),
    ("--version", "0", "version"),
])
def test_build_refuses_bad_arguments(examples: Path, keys: Path, tmp_path: Path, flag: str,
                                     value: str, message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("terminal.loyalty.rules")
    options = {"--scope": "chain", "--version": "1", "--expires": "30d", flag: value}
    argv = ["bundle", "build", str(examples / "rules.toml"), "--keys", str(keys),
            "-o", str(tmp_path / "b.json")]
    for name, text in options.items():
        argv += [name, text]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_push_publishes_retained_and_terminals_verify(examples: Path, keys: Path,
                                                      tmp_path: Path, pki, broker) -> None:
    pytest.importorskip("terminal.loyalty.rules")
    out = tmp_path / "b.json"
    assert main(["bundle", "build", str(examples / "rules.toml"), "--scope", "chain",
                 "--version", "1", "--expires", "30d", "--keys", str(keys), "-o", str(out)]) == 0
    hq = pki.client("hq")
    assert main(["bundle", "push", str(out), "--keys", str(keys), "--port", str(broker.port),
                 "--ca", str(hq.ca), "--cert", str(hq.cert), "--key", str(hq.key)]) == 0

    async def terminal_receives() -> bytes:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "S001/T01") as terminal:
            await terminal.subscribe(Topics().bundle("chain"), inbox)
            return (await inbox.wait_for(1))[0].payload

    got = bundle.verify_bundle(run(terminal_receives()), trust(keys), {"chain"}, 0,
                               datetime.now(UTC), True)
    assert got.version == 1 and got.scope == "chain"
