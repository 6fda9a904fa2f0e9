"""`posterm-hq bundle push` is recorded in the rules studio's history like the studio's own
releases: who pushed, its version in the one sequence, approver for the chain, audited; and
refused as the studio refuses (role, the two-person policy, a version not above every
release, rules as written that are not the bundle's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.hq.cli import main
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ConsoleAudit
from terminal.hq.rules_studio import releases
from terminal.hq.rules_studio.models import BundleRelease
from tests.console.chain import add_user_at
from tests.rules_studio.edits import BASE, edited

TRIPLED = edited(("points_per_yuan = 1 ", "points_per_yuan = 3 "))


@pytest.fixture
def setup(tmp_path: Path, pki, broker) -> dict:
    keys = tmp_path / "keys"
    assert main(["keygen", str(keys), "--days", "30"]) == 0
    url = str(tmp_path / "hq.db")
    for name, role in (("mkt", "marketing"), ("boss", "admin"), ("deputy", "admin")):
        add_user_at(url, name, role)
    hq = pki.client("hq")
    return {"tmp": tmp_path, "keys": keys, "url": url,
            "broker": ["--port", str(broker.port), "--ca", str(hq.ca), "--cert", str(hq.cert),
                       "--key", str(hq.key)]}


def _build(setup: dict, scope: str, version: int, text: str = TRIPLED) -> Path:
    rules = setup["tmp"] / f"rules-{version}.toml"
    rules.write_text(text, encoding="utf-8")
    out = setup["tmp"] / f"b-{scope.replace('/', '-')}-{version}.json"
    assert main(["bundle", "build", str(rules), "--scope", scope, "--version", str(version),
                 "--expires", "30d", "--keys", str(setup["keys"]), "-o", str(out)]) == 0
    return out


def _push(setup: dict, built: Path, who: str) -> int:
    return main(["bundle", "push", str(built), "--keys", str(setup["keys"]), "--db",
                 setup["url"], "--as", who, *setup["broker"]])


def _recorded(url: str) -> tuple[list[tuple], list[tuple]]:
    db = ConsoleDb(url)
    try:
        return db.call(lambda: (
            [(r.version, r.kind, json.loads(r.scopes), r.author, r.approver, r.state)
             for r in BundleRelease.select().order_by(BundleRelease.version)],
            [(a.actor, a.via, a.subject) for a in ConsoleAudit.select().where(
                ConsoleAudit.action == "rules.push").order_by(ConsoleAudit.id)]))
    finally:
        db.close()


def test_a_push_by_command_is_in_the_studios_history(setup: dict,
                                                     capsys: pytest.CaptureFixture) -> None:
    chain1 = _build(setup, "chain", 1)
    assert _push(setup, chain1, "mkt") == 1  # marketing may not push to the chain
    assert "rules.approve" in capsys.readouterr().err
    assert _push(setup, chain1, "nobody") == 1
    assert _recorded(setup["url"]) == ([], [])

    assert _push(setup, chain1, "boss") == 0
    assert "recorded as release v1 by boss" in capsys.readouterr().out
    assert _recorded(setup["url"]) == ([(1, "push", ["chain"], "boss", "boss", "pushed")],
                                       [("boss", "cli", "v1")])
    db = ConsoleDb(setup["url"])
    try:  # what the studio takes as the rules in force from now on
        assert db.call(releases.in_force_text, BASE) == TRIPLED
    finally:
        db.close()

    # The version must be above every release: a store bundle built as v1 is refused.
    assert _push(setup, _build(setup, "store/S001", 1), "mkt") == 1
    assert "--version 2" in capsys.readouterr().err
    assert _push(setup, _build(setup, "store/S001", 2, BASE), "mkt") == 0

    # The rules as written must be the bundle's.
    store3 = _build(setup, "store/S002", 3)
    Path(f"{store3}.rules.toml").write_text(BASE, encoding="utf-8")
    assert _push(setup, store3, "mkt") == 1
    assert "not the rules the bundle carries" in capsys.readouterr().err

    # Under the two-person policy nobody pushes to the chain alone: stage, then approve.
    assert main(["rules", "policy", "--two-person", "on", "--db", setup["url"],
                 "--as", "boss"]) == 0
    assert _push(setup, _build(setup, "chain", 3), "boss") == 1
    assert "second person" in capsys.readouterr().err
    assert _recorded(setup["url"]) == (
        [(1, "push", ["chain"], "boss", "boss", "pushed"),
         (2, "push", ["store/S001"], "mkt", "", "pushed")],
        [("boss", "cli", "v1"), ("mkt", "cli", "v2")])
    assert main(["rules", "history", "--db", setup["url"]]) == 0
    assert "v2 push pushed store/S001: by mkt" in capsys.readouterr().out


def test_a_bundle_without_its_rules_as_written_is_refused(setup: dict) -> None:
    built = _build(setup, "chain", 1)
    Path(f"{built}.rules.toml").unlink()
    assert _push(setup, built, "boss") == 1
    assert _recorded(setup["url"]) == ([], [])
