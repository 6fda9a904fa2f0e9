"""Catalogue text the ledgers could store differently is refused wherever a catalogue comes in:
the till's load (its config's file, a bundle's payload) and HQ's bundle build (issue 16,
break 9: NUL in a product name was refused by PostgreSQL and applied by SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.hq.bundles import BuildError, read_catalogue
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import Identity, LedgerStore
from terminal.loyalty.store.people import load_catalogue
from terminal.protocol import bundle
from terminal.sync import bundle_store
from tests.sync.harness import CARD_KEY, Keys, rules_data

GOOD = {"sku": "6900000000011", "name": "草莓 Strawberries", "price_fen": 350}
HOSTILE = ["草莓\x00", "\x00", "a\x1bb", "\ud800", "bad\x7f"]


@pytest.fixture
def till(tmp_path: Path) -> LedgerStore:
    store = LedgerStore.open(tmp_path / "till.db", Rules.from_mapping(rules_data()), CARD_KEY,
                             Identity("S001", "T01"))
    load_catalogue(store.db, [GOOD])
    yield store
    store.close()


def _names(store: LedgerStore) -> list[str]:
    return [row[0] for row in store.db.execute_sql("SELECT name FROM product").fetchall()]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("field", ["name", "sku", "category", "barcode"])
def test_control_characters_in_catalogue_text_are_refused_at_load(till: LedgerStore, name: str,
                                                                  field: str) -> None:
    with pytest.raises(InvalidInput, match=r"control character|not valid text"):
        load_catalogue(till.db, [{**GOOD, field: name}])
    assert _names(till) == [GOOD["name"]]


def test_a_bundle_whose_catalogue_holds_nul_is_refused_and_changes_nothing(
        till: LedgerStore, tmp_path: Path) -> None:
    keys = Keys(tmp_path / "keys")
    wire = keys.bundle("store/S001", 1, {
        "rules": rules_data(), "catalogue": [{**GOOD, "name": "草莓\x00"}], "settings": {}})
    trust = bundle.TrustStore.of([keys.root.public_key()])
    with pytest.raises(bundle_store.BadPayload, match="catalogue"):
        bundle_store.receive(till, wire, "store/S001", trust, ("chain", "store/S001"), True)
    assert _names(till) == [GOOD["name"]] and bundle_store.held() == {}


def test_hq_will_not_build_a_bundle_whose_catalogue_holds_nul(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps([{**GOOD, "name": "草莓\u0000"}]), encoding="utf-8")
    with pytest.raises(BuildError, match="control character"):
        read_catalogue(path)


