"""`posterm-hq keygen`, `bundle build` and `bundle push`, end to end; `posterm-hq acl` on files."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminal.hq import acl as hq_acl
from terminal.hq.cli import main
from terminal.protocol import bundle
from terminal.protocol.keys import load_public
from terminal.protocol.topics import Topics
from tests.support.mosquitto import SHIPPED_ACL
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
    # A SKU of digits stays text (tills refuse a number for a SKU); the price is whole fen.
    assert got.payload["catalogue"] == [{"sku": "6901234567892", "name": "Tea",
                                         "price_fen": 1250, "category": "fresh"}]
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
    hq, db = pki.client("hq"), str(tmp_path / "hq.db")
    from tests.console.chain import add_user_at
    add_user_at(db, "boss", "admin")  # the push is recorded as this console user's
    assert main(["bundle", "push", str(out), "--keys", str(keys), "--port", str(broker.port),
                 "--ca", str(hq.ca), "--cert", str(hq.cert), "--key", str(hq.key),
                 "--db", db, "--as", "boss"]) == 0

    async def terminal_receives() -> bytes:
        inbox = Inbox()
        async with mqtt_client(pki, broker, "S001/T01") as terminal:
            await terminal.subscribe(Topics().bundle("chain"), inbox)
            return (await inbox.wait_for(1))[0].payload

    got = bundle.verify_bundle(run(terminal_receives()), trust(keys), {"chain"}, 0,
                               datetime.now(UTC), True)
    assert got.version == 1 and got.scope == "chain"


# --- posterm-hq acl ---------------------------------------------------------------------------

STATIC = SHIPPED_ACL


def acl_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["acl", "--register", str(tmp_path / "terminals"), "--static", str(STATIC),
            "-o", str(tmp_path / "acl"), *extra]


def blocks(acl: str) -> dict[str, list[str]]:
    """The generated part as {user: [topic lines]}."""
    generated = acl.split(hq_acl.MARKER, 1)[1]
    users: dict[str, list[str]] = {}
    current = None
    for line in generated.splitlines():
        if line == "user hq":  # the file's generation line (terminal.hq.broker_acl)
            current = None
        elif line.startswith("user "):
            current = users.setdefault(line[5:], [])
        elif line.startswith("topic ") and current is not None:
            current.append(line)
    return users


def test_acl_keeps_the_static_part_and_grants_each_terminal_its_store(tmp_path: Path) -> None:
    (tmp_path / "terminals").write_text("# the chain's tills\nS002/T01\n\nS001/T02\n  S001/T01\n")
    assert main(acl_args(tmp_path)) == 0
    acl = (tmp_path / "acl").read_text()
    assert acl.startswith(STATIC.read_text())
    assert "bundles/#" not in acl.split("user hq", 1)[0]  # only HQ reads every bundle
    assert "pattern read posterm/v1/bundles/chain" in acl
    assert blocks(acl) == {  # its store's bundles and the OS update staged to its store
        "S001/T01": ["topic read posterm/v1/bundles/store/S001",
                     "topic read posterm/v1/os/store/S001"],
        "S001/T02": ["topic read posterm/v1/bundles/store/S001",
                     "topic read posterm/v1/os/store/S001"],
        "S002/T01": ["topic read posterm/v1/bundles/store/S002",
                     "topic read posterm/v1/os/store/S002"],
    }
    assert list(blocks(acl)) == sorted(blocks(acl))
    first = (tmp_path / "acl").read_text()
    assert main(acl_args(tmp_path)) == 0  # the same register gives the same file
    assert (tmp_path / "acl").read_text() == first


def test_acl_add_and_remove_update_the_register_then_the_acl(tmp_path: Path) -> None:
    register = tmp_path / "terminals"
    assert main(acl_args(tmp_path, "--add", "S001/T01", "--add", "S002/T01")) == 0
    assert [line for line in register.read_text().splitlines()
            if not line.startswith("#")] == ["S001/T01", "S002/T01"]
    (tmp_path / "acl").chmod(0o640)
    inode = (tmp_path / "acl").stat().st_ino
    assert main(acl_args(tmp_path, "--remove", "S002/T01", "--add", "S003/T09")) == 0
    assert set(blocks((tmp_path / "acl").read_text())) == {"S001/T01", "S003/T09"}
    assert "S002/T01" not in register.read_text()
    assert (tmp_path / "acl").stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert stat.S_IMODE((tmp_path / "acl").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "terminals"]  # no temp files left
    assert main(acl_args(tmp_path, "--add", "S001/T01")) == 0  # already registered: no change
    assert register.read_text().count("S001/T01") == 1


def test_acl_adds_the_terminal_named_in_its_certificate_request(tmp_path: Path) -> None:
    from terminal.field import provision

    prov = provision.Provisioning(
        store="S004", terminal_id="T02", broker_host="mqtt.chain.example", broker_port=8883,
        broker_ca=b"", hq_root_public_key=b"", certificate=None, private_key=None, usb_ids={},
        devices={})
    csr = provision.provision(prov, tmp_path / "state").csr
    assert csr is not None
    (tmp_path / "terminals").write_text("S001/T01\n")
    assert main(acl_args(tmp_path, "--add-from", str(csr))) == 0
    assert set(blocks((tmp_path / "acl").read_text())) == {"S001/T01", "S004/T02"}


@pytest.mark.parametrize(("register", "extra", "message"), [
    ("S001/T01\nS0 01/T02\n", (), "terminals:2: 'S0 01/T02': store id"),
    ("S001/T+1\n", (), "terminals:1: 'S001/T+1': terminal id"),
    ("S001/#\n", (), "terminals:1: 'S001/#': terminal id"),
    ("S001\n", (), "terminals:1: 'S001' must be one '{store}/{terminal}'"),
    ("S001/T01/X\n", (), "terminals:1: 'S001/T01/X' must be one"),
    ("S001/T01 # by the door\n", (), "terminal id"),
    ("S001/\tT01\n", (), "terminal id"),
    ("hq\n", (), "'hq' must be one"),
    ("S001/T01\nS001/T01\n", (), "terminals:2: S001/T01 is already listed on line 1"),
    ("S001/T01\n", ("--add", "S001/T 2"), "--add: 'S001/T 2': terminal id"),
    ("S001/T01\n", ("--add", "S+/T01"), "--add: 'S+/T01': store id"),
    ("S001/T01\n", ("--remove", "S009/T01"), "--remove: S009/T01 not in"),
    ("S001/T01\n", ("--add", "S002/T01", "--remove", "S002/T01"), "both added and removed"),
    ("S001/T01\n", ("--root", "posterm/v2"), "for another topic root"),
    ("S001/T01\n", ("--root", "posterm/#"), "--root"),
])
def test_acl_refuses_bad_input_and_writes_nothing(tmp_path: Path, register: str,
                                                   extra: tuple[str, ...], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "terminals").write_text(register)
    (tmp_path / "acl").write_text("the last good ACL\n")
    assert main(acl_args(tmp_path, *extra)) == 1
    err = capsys.readouterr().err
    assert "refused, nothing written" in err and message in err, err
    assert (tmp_path / "acl").read_text() == "the last good ACL\n"
    assert (tmp_path / "terminals").read_text() == register
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "terminals"]


def test_acl_refuses_a_missing_register_or_a_generated_static_part(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(acl_args(tmp_path)) == 1
    assert "no register" in capsys.readouterr().err
    assert not (tmp_path / "acl").exists()
    assert main(acl_args(tmp_path, "--add", "S001/T01")) == 0
    generated = tmp_path / "acl"
    assert main(["acl", "--register", str(tmp_path / "terminals"), "--static", str(generated),
                 "-o", str(tmp_path / "acl2")]) == 1
    assert "is a generated ACL" in capsys.readouterr().err
    assert not (tmp_path / "acl2").exists()
    not_a_pem = tmp_path / "junk.csr"
    not_a_pem.write_text("hello")
    assert main(acl_args(tmp_path, "--add-from", str(not_a_pem))) == 1
    assert "not a PEM certificate or certificate request" in capsys.readouterr().err
