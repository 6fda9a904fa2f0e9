"""Stage, approve and roll back with `posterm-hq rules ...` against a real Mosquitto, real tills
(ledger + MqttHqLink) and a real collector recording their statuses in HQ's database (SQLite,
and PostgreSQL the test starts): S001's tills apply the staged bundle (one refuses it: it holds
the signing key as revoked, and says so), the chain push reaches S002, a rollback brings an
earlier release's content back as a higher version, and `rules history` tells it all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.cli import main as hq_main
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ConsoleAudit
from terminal.protocol import bundle, canonical
from terminal.protocol.keys import private_pem
from tests.console.chain import add_user_at
from tests.support.shared import EXAMPLES
from tests.sync.conftest import run
from tests.sync.harness import Chain, until

pytestmark = pytest.mark.slow  # a broker

RULES = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")
TRIPLED = RULES.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")


def keys_dir(chain: Chain) -> Path:
    """What `posterm-hq keygen` leaves for HQ: the signing key, its delegation, root.pub (and
    no root.key: the studio never needs it)."""
    keys = chain.tmp / "keys"
    (keys / "signing.key").write_bytes(private_pem(chain.keys.signing))
    (keys / "delegation.json").write_bytes(canonical.dumps(chain.keys.delegation.to_wire()))
    return keys


def _users(url: str) -> None:
    for name, role in (("mkt", "marketing"), ("boss", "admin"), ("deputy", "admin")):
        add_user_at(url, name, role)


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(hq_main, list(argv))


def _history(url: str, version: int, capsys: Any) -> dict[str, Any]:
    capsys.readouterr()
    assert hq_main(["rules", "history", "--db", url, "--version", str(version), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _states(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f"{t['store']}/{t['terminal']} {t['scope']}": (t["state"], t["reason"])
            for t in data["terminals"]}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_stage_approve_rollback_through_the_broker(pki, broker, tmp_path, capsys, database,
                                                   request) -> None:
    chain = Chain(tmp_path, pki, broker)
    if database == "sqlite":
        url = str(tmp_path / "hq.db")
    else:
        from tests.hq.test_postgres_collector import fresh_database
        url = fresh_database(request.getfixturevalue("postgres"))
    chain.hq(url)
    s1 = chain.till("S001", "T01")
    revoking = chain.till("S001", "T02",
                          revoked_keys=[bundle.key_id(chain.keys.signing.public_key())])
    s2 = chain.till("S002", "T01")
    keys = keys_dir(chain)
    _users(url)
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(TRIPLED, encoding="utf-8")
    hq = pki.client("hq")
    broker_args = ["--host", broker.host, "--port", str(broker.port), "--ca", str(hq.ca),
                   "--cert", str(hq.cert), "--key", str(hq.key), "--keys", str(keys),
                   "--db", url]

    async def scenario() -> None:
        async with chain:
            assert await _cli("rules", "stage", str(candidate), "--store", "S001", "--as", "mkt",
                              *broker_args) == 0
            await until(lambda: s1.link.rule_version == 1)
            assert s1.store.rules.earn.points_per_yuan == 3
            await until(lambda: revoking.link.rejected is not None)
            assert revoking.link.rejected["reason"] == "key_revoked"
            assert s2.link.rule_version == 0  # another store: untouched
            await until(lambda: _states(_history(url, 1, capsys)) == {
                "S001/T01 store/S001": ("applied", ""),
                "S001/T02 store/S001": ("refused", "key_revoked"),
            })

            # marketing may not approve; with the policy on, the author may not either
            assert await _cli("rules", "approve", "1", "--as", "mkt", *broker_args) == 1
            assert await _cli("rules", "policy", "--two-person", "on", "--as", "boss",
                              "--db", url) == 0
            assert await _cli("rules", "stage", str(candidate), "--store", "S001",
                              "--as", "boss", *broker_args) == 0
            assert await _cli("rules", "approve", "2", "--as", "boss", *broker_args) == 1
            assert await _cli("rules", "approve", "2", "--as", "deputy", *broker_args) == 0
            await until(lambda: s2.link.rule_version == 3 and s1.link.rule_version == 3)
            assert s2.store.rules.earn.points_per_yuan == 3

            # S002 is staged other rules (v4), found wrong: roll back to v3's content (as v5)
            original = tmp_path / "original.toml"
            original.write_text(RULES, encoding="utf-8")
            assert await _cli("rules", "stage", str(original), "--store", "S002",
                              "--as", "mkt", *broker_args) == 0
            await until(lambda: s2.link.rule_version == 4)
            assert s2.store.rules.earn.points_per_yuan == 1
            assert await _cli("rules", "rollback", "3", "--as", "boss", *broker_args) == 0
            await until(lambda: s2.link.rule_version == 5 and s1.link.rule_version == 5)
            assert s2.store.rules.earn.points_per_yuan == 3
            await until(lambda: _states(_history(url, 5, capsys)) == {
                "S001/T01 chain": ("applied", ""), "S001/T01 store/S001": ("applied", ""),
                "S001/T02 chain": ("refused", "key_revoked"),
                "S001/T02 store/S001": ("refused", "key_revoked"),
                "S002/T01 chain": ("applied", ""), "S002/T01 store/S002": ("applied", ""),
            })

    run(scenario(), timeout=120)
    data = _history(url, 5, capsys)
    assert (data["kind"], data["source_version"], data["author"]) == ("rollback", 3, "boss")
    assert data["scopes"] == ["chain", "store/S001", "store/S002"]
    capsys.readouterr()
    assert hq_main(["rules", "history", "--db", url, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["version"], h["kind"], h["author"], h["approver"]) for h in history] == [
        (5, "rollback", "boss", "boss"), (4, "stage", "mkt", ""),
        (3, "chain", "boss", "deputy"), (2, "stage", "boss", ""), (1, "stage", "mkt", "")]
    assert history[0]["holding"] == ["S001/T01", "S002/T01"]
    db = ConsoleDb(url)
    try:
        actions = db.call(lambda: [(a.actor, a.action, a.subject) for a in
                                   ConsoleAudit.select().where(
                                       ConsoleAudit.action.startswith("rules."))
                                   .order_by(ConsoleAudit.id)])
    finally:
        db.close()
    assert actions == [("mkt", "rules.stage", "v1"), ("boss", "rules.policy", "two_person"),
                       ("boss", "rules.stage", "v2"), ("deputy", "rules.chain", "v3"),
                       ("mkt", "rules.stage", "v4"), ("boss", "rules.rollback", "v5")]
