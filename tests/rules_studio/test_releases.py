"""Releases without a broker: who may stage, approve and roll back, the two-person policy, the
version sequence, the root key refused, and where a release stands from the terminals' reports
(HQ's database on SQLite and on PostgreSQL, the console's own tables)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.hq.console import accounts, audit
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ConsoleAudit
from terminal.hq.console.roles import Forbidden, Principal
from terminal.hq.member_ops.publish import Signer
from terminal.hq.models import BundleRefusal, TerminalSeen
from terminal.hq.rules_studio import releases, rollout
from terminal.hq.rules_studio.models import BundleRelease
from terminal.protocol import bundle
from tests.support.shared import EXAMPLES

RULES = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")
MKT = Principal("mkt", "marketing")
ADMIN = Principal("boss", "admin")
ADMIN2 = Principal("deputy", "admin")


def _keys() -> tuple[Signer, bundle.TrustStore]:
    """A signing key delegated by a fresh root, and a terminal's trust in that root."""
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    start = datetime.now(UTC) - timedelta(days=1)
    return (Signer(signing, bundle.delegate(root, signing.public_key(), start,
                                            start + timedelta(days=90)).to_wire()),
            bundle.TrustStore.of([root.public_key()]))


def _signer() -> Signer:
    return _keys()[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db(request, tmp_path: Path):
    """HQ's database: a SQLite file, and PostgreSQL (production's) the test starts."""
    if request.param == "sqlite":
        url = str(tmp_path / "hq.db")
    else:
        from tests.hq.test_postgres_collector import fresh_database
        url = fresh_database(request.getfixturevalue("postgres"))
    console = ConsoleDb(url)
    yield console
    console.close()


def _content(text: str = RULES) -> releases.Content:
    return releases.Content(text, [], {})


def _pushed(db: ConsoleDb, row: BundleRelease) -> BundleRelease:
    db.call(releases.mark_pushed, row.version)
    return db.call(releases.get, row.version)


def _seen(store: str, terminal: str, held: dict[str, int], rule_version: int = 0) -> None:
    TerminalSeen.create(store=store, terminal=terminal, online=True, epoch=1, version="t",
                        rule_version=rule_version, backlog=0, bundles=json.dumps(held),
                        last_seen_us=audit.now_us())


def test_stage_signs_for_one_store_above_every_version_a_terminal_holds(db) -> None:
    db.call(_seen, "S001", "T01", {"chain": 41}, 41)
    signer, trust = _keys()
    row = db.call(releases.stage, MKT, _content(), "S001", signer)
    assert row.version == 42 and json.loads(row.scopes) == ["store/S001"]
    assert row.author == "mkt" and row.state == "signed" and row.kind == "stage"
    (scope, message), = releases.messages(row)
    checked = bundle.verify_bundle(message, trust, {"store/S001"}, 0, datetime.now(UTC), True)
    assert scope == "store/S001" and checked.version == 42
    assert checked.payload["rules"]["earn"]["points_per_yuan"] == 1
    assert db.call(lambda: [(a.actor, a.action, a.subject) for a in ConsoleAudit.select()]) \
        == [("mkt", "rules.stage", "v42")]


def test_refused_steps_change_nothing(db) -> None:
    signer = _signer()
    broken = RULES.replace("points_per_yuan = 1 ", 'points_per_yuan = "三" ')
    with pytest.raises(releases.ReleaseError, match=r"earn\.points_per_yuan"):
        db.call(releases.stage, MKT, _content(broken), "S001", signer)
    with pytest.raises(releases.ReleaseError, match="store"):
        db.call(releases.stage, MKT, _content(), "S/1", signer)
    with pytest.raises(Forbidden):
        db.call(releases.stage, Principal("svc", "service"), _content(), "S001", signer)
    root = Ed25519PrivateKey.generate()
    start = datetime.now(UTC)
    as_root = Signer(root, bundle.delegate(root, root.public_key(), start,
                                           start + timedelta(days=9)).to_wire())
    with pytest.raises(releases.ReleaseError, match="root key"):
        db.call(releases.stage, MKT, _content(), "S001", as_root)
    assert db.call(lambda: (BundleRelease.select().count(), ConsoleAudit.select().count())) \
        == (0, 0)


def test_approve_needs_admin_a_pushed_stage_once_and_with_the_policy_a_second_person(
        db) -> None:
    signer = _signer()
    staged = db.call(releases.stage, ADMIN, _content(), "S001", signer)
    with pytest.raises(releases.ReleaseError, match="not a staged release that was pushed"):
        db.call(releases.approve, ADMIN, staged.version, signer)
    staged = _pushed(db, staged)
    with pytest.raises(Forbidden):
        db.call(releases.approve, MKT, staged.version, signer)
    db.call(releases.set_two_person, ADMIN, True)
    with pytest.raises(releases.ReleaseError, match="second person"):
        db.call(releases.approve, ADMIN, staged.version, signer)
    chain = db.call(releases.approve, ADMIN2, staged.version, signer)
    assert (chain.kind, chain.author, chain.approver, chain.source_version) \
        == ("chain", "boss", "deputy", staged.version)
    # The store that ran the staged bundle follows the chain: its store scope is pushed too.
    assert json.loads(chain.scopes) == ["chain", "store/S001"]
    assert chain.content_sha == staged.content_sha and chain.version == staged.version + 1
    with pytest.raises(releases.ReleaseError, match="approved already"):
        db.call(releases.approve, ADMIN2, staged.version, signer)
    db.call(releases.set_two_person, ADMIN, False)
    assert not db.call(releases.policy_two_person)


def test_rollback_republishes_earlier_content_as_a_higher_version(db) -> None:
    signer = _signer()
    first = _pushed(db, db.call(releases.stage, MKT, _content(), "S001", signer))
    first_chain = _pushed(db, db.call(releases.approve, ADMIN, first.version, signer))
    tripled = RULES.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")
    second = _pushed(db, db.call(releases.stage, MKT, _content(tripled), "S001", signer))
    _pushed(db, db.call(releases.approve, ADMIN, second.version, signer))
    assert db.call(releases.in_force_text, "") == tripled
    with pytest.raises(Forbidden):
        db.call(releases.rollback, MKT, first_chain.version, signer)
    back = _pushed(db, db.call(releases.rollback, ADMIN, first_chain.version, signer))
    assert back.version == 5 and back.kind == "rollback" and back.source_version == 2
    assert back.content_sha == first_chain.content_sha
    assert json.loads(back.scopes) == ["chain", "store/S001"]
    assert db.call(releases.in_force_text, "") == RULES


def test_where_a_release_stands_from_the_terminals_reports(db) -> None:
    signer = _signer()
    staged = _pushed(db, db.call(releases.stage, MKT, _content(), "S001", signer))
    chain = _pushed(db, db.call(releases.approve, ADMIN, staged.version, signer))

    def reports() -> None:
        _seen("S001", "T01", {"chain": chain.version, "store/S001": chain.version})
        _seen("S001", "T02", {"store/S001": staged.version})
        _seen("S002", "T01", {})
        _seen("S003", "T01", {"chain": chain.version + 7})
        BundleRefusal.create(store="S002", terminal="T01", scope="chain", reason="key_revoked",
                             detail="signing key x is revoked", at="2026-12-05T10:00:00+00:00",
                             received_us=audit.now_us())
    db.call(reports)
    lines = db.call(rollout.terminals, chain)
    states = {(x["store"], x["terminal"], x["scope"]): (x["state"], x["reason"]) for x in lines}
    assert states == {
        ("S001", "T01", "chain"): ("applied", ""),
        ("S001", "T01", "store/S001"): ("applied", ""),
        ("S001", "T02", "chain"): ("pending", ""),
        ("S001", "T02", "store/S001"): ("pending", ""),
        ("S002", "T01", "chain"): ("refused", "key_revoked"),
        ("S003", "T01", "chain"): ("newer", ""),
    }
    history = db.call(rollout.history)
    assert [h["version"] for h in history] == [chain.version, staged.version]
    assert history[0]["holding"] == ["S001/T01"]
    assert history[1]["holding"] == ["S001/T02"]
    assert history[0]["counts"] == {"applied": 2, "newer": 1, "refused": 1, "pending": 2}


def test_the_command_line_acts_as_a_console_user(db) -> None:
    db.call(accounts.add_user, "mkt", "marketing", (), "correct horse battery")
    assert db.call(accounts.user_principal, "mkt", "cli") == Principal("mkt", "marketing", (),
                                                                      "cli")
    assert db.call(accounts.user_principal, "nobody", "cli") is None
