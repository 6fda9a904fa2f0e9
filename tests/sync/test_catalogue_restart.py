"""A restart keeps HQ's signed catalogue: the held bundle's catalogue wins over the config's
``catalogue_file``, which only seeds a till that has never held a bundle (issue 16, break 6).
The till is built as the daemon builds it, its bundle arrives retained over a real broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal.daemon.bootstrap import build
from terminal.daemon.config import parse_config
from terminal.protocol.topics import Topics
from tests.support.till_config import till_config_data
from tests.sync.conftest import mqtt_client, run
from tests.sync.harness import CARD_KEY, Keys, rules_data, until

T = Topics()
SEED = '''
[[product]]
sku = "6900000000011"
barcode = "6900000000011"
name = "草莓 Strawberries"
category = "fresh"
price_fen = 350
'''


def _config(tmp: Path, keys: Keys, pki: Any, broker: Any) -> Any:
    (tmp / "catalogue.toml").write_text(SEED, encoding="utf-8")
    data = till_config_data(tmp / "till", tmp / "card.key",
                            mqtt=(broker, pki.client("S001/T01"), keys.root_pub))
    data["loyalty"]["catalogue_file"] = str(tmp / "catalogue.toml")
    return parse_config(data, "till.toml")


async def _price(terminal: Any) -> int:
    def read() -> int:
        row = terminal.ledger.store.db.execute_sql(
            "SELECT price_fen FROM product WHERE sku = '6900000000011'").fetchone()
        return int(row[0])
    return await terminal.ledger.executor.run(read)


def test_a_restart_keeps_the_held_bundles_catalogue(pki, broker, tmp_path) -> None:
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    keys = Keys(tmp_path / "keys")
    config = _config(tmp_path, keys, pki, broker)
    v7 = keys.bundle("store/S001", 7, {
        "rules": rules_data(),
        "catalogue": [{"sku": "6900000000011", "barcode": "6900000000011",
                       "name": "草莓 Strawberries", "category": "fresh", "price_fen": 990}],
        "settings": {}})

    async def scenario() -> None:
        terminal = await build(config)
        try:
            assert await _price(terminal) == 350  # first boot: the file seeds the catalogue
            async with mqtt_client(pki, broker, "hq", client_id="hq-push") as hq:
                await hq.publish(T.bundle("store/S001"), v7, retain=True)
            await until(lambda: terminal.link.rule_version == 7)
            assert await _price(terminal) == 990
        finally:
            await terminal.close()
        again = await build(config)  # the restart, the same config and its catalogue_file
        try:
            assert await _price(again) == 990
            await until(lambda: again.link.rejected is not None)  # the retained v7: not newer
            assert again.link.rejected["reason"] == "stale_version"
            assert again.link.rule_version == 7 and await _price(again) == 990
        finally:
            await again.close()

    run(scenario(), timeout=90)
