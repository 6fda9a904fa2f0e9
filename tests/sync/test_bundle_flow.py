"""Signed bundles through the broker: out of order, refused ones reported, kept across reboots."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.loyalty.store.models import Product
from terminal.protocol.messages import Status
from terminal.protocol.topics import Topics
from terminal.sync import bundle_store
from tests.sync.conftest import Inbox, mqtt_client, run
from tests.sync.harness import Chain, now, until

T = Topics()


def payload(chain: Chain, version: int) -> dict:
    return {"rules": chain.rules_data,
            "catalogue": [{"sku": f"V{version}", "name": f"item of v{version}", "price_fen": 100}],
            "settings": {"greeting": f"v{version}"}}


async def catalogue(till) -> list[str]:
    return await till.run(lambda: [p.sku for p in Product.select()])


async def held_versions(till) -> dict[str, int]:
    return await till.run(lambda: {s: r.version for s, r in bundle_store.held().items()})


def rejections(inbox: Inbox) -> list[str]:
    found = []
    for message in inbox.messages:
        status = Status.from_json(message.payload)
        if status.rejected and (not found or found[-1][1] != status.rejected["at"]):
            found.append((status.rejected["reason"], status.rejected["at"]))
    return [reason for reason, _ in found]


def test_bundles_out_of_order_keep_the_highest_across_a_reboot(pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till = chain.till()
        settings: list[dict] = []
        till.link.on_settings = settings.append
        status = Inbox()
        async with chain:
            async with mqtt_client(pki, broker, "hq", client_id="hq-push") as hq:
                await hq.subscribe(T.status("S001", "T01"), status)
                for version in (5, 3, 4):
                    await hq.publish(T.bundle("store/S001"),
                                     chain.keys.bundle("store/S001", version,
                                                       payload(chain, version)), retain=True)
                await until(lambda: rejections(status) == ["stale_version", "stale_version"])
            assert till.link.rule_version == 5
            assert await held_versions(till) == {"store/S001": 5}
            assert await catalogue(till) == ["V5"]
            assert settings == [{"greeting": "v5"}]
            # Reboot: the held version comes back from the database, not from the broker.
            await till.link.stop()
            till.store.close()
            chain.tills.clear()
            again = chain.till()
            await again.link.start()
            assert again.link.rule_version == 5 and again.store.rules is not chain.rules
            await until(lambda: again.link.rejected is not None)  # retained v4 refused again
            assert again.link.rejected["reason"] == "stale_version"
            assert await catalogue(again) == ["V5"]
    run(scenario(), timeout=60)


def test_forged_expired_wrong_scope_older_and_garbled_bundles_are_refused(
        pki, broker, tmp_path) -> None:
    async def scenario() -> None:
        chain = Chain(tmp_path, pki, broker)
        till = chain.till()
        status = Inbox()
        topic = T.bundle("store/S001")
        keys = chain.keys
        bad = [
            ("bad_signature", keys.bundle("store/S001", 9, payload(chain, 9),
                                          signing=Ed25519PrivateKey.generate())),
            ("expired", keys.bundle("store/S001", 9, payload(chain, 9),
                                    issued=now() - timedelta(days=10),
                                    expires=now() - timedelta(days=1))),
            ("wrong_scope", keys.bundle("store/S002", 9, payload(chain, 9))),
            ("stale_version", keys.bundle("store/S001", 1, payload(chain, 1))),
            ("malformed", b'{"bundle": "not base64!", "signature": "", "delegation": {}}'),
        ]
        async with chain:
            async with mqtt_client(pki, broker, "hq", client_id="hq-push") as hq:
                await hq.subscribe(T.status("S001", "T01"), status)
                await hq.publish(topic, keys.bundle("store/S001", 2, payload(chain, 2)),
                                 retain=True)
                await until(lambda: till.link.rule_version == 2)
                for n, (_, message) in enumerate(bad, 1):
                    await hq.publish(topic, message, retain=True)
                    await until(lambda n=n: len(rejections(status)) == n)
            assert rejections(status) == [reason for reason, _ in bad]
            assert await held_versions(till) == {"store/S001": 2}
            assert await catalogue(till) == ["V2"] and till.link.rule_version == 2
    run(scenario(), timeout=60)
