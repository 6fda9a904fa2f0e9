"""The rules studio end to end in Chromium (issue 17): marketing edits the rules, meets the
engine's error on its line, fixes it, reads the diff, backtests on the chain's history and stages
the candidate to S001; S001's till (built as the daemon builds it, on simulated hardware, linked
through a real Mosquitto) applies it and the fleet page says so; an admin approves the chain push
(two-person policy on), S002 applies it too; the admin rolls back to the chain's previous
release, which comes back as a new version. Screenshots: var/test-artifacts/screenshots/release-*.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.cli import main as hq_main
from terminal.hq.console.app import build, rules_studio
from terminal.hq.rules_studio.pushing import Keys
from terminal.loyalty.rules import Rules
from terminal.protocol import canonical
from terminal.protocol.mqtt import MqttConfig
from tests.console.chain import add_user_at, add_users, build_chain, sign_in
from tests.console.rules_studio import IN_FORCE_TEXT
from tests.console.test_browser_ops import _shot
from tests.rules_studio.test_release_flow import keys_dir
from tests.support.browser import CHROMIUM, async_page, serving
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, rules_data, until
from tests.sync.test_across_stores import _stores

pytestmark = [pytest.mark.slow,  # Chromium, a broker
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]

CATALOGUE = [{"sku": "6901234567892", "name": "矿泉水 550ml", "price_fen": 200}]


def _baseline(url: str, chain: Chain, keys: Path) -> None:
    """The chain's rules in force before the studio's change, as releases v1 (S001) and v2
    (the chain): what a rollback goes back to."""
    add_user_at(url, "deputy", "admin")
    (chain.tmp / "in-force.toml").write_text(IN_FORCE_TEXT, encoding="utf-8")
    (chain.tmp / "catalogue.json").write_bytes(canonical.dumps(CATALOGUE))
    files = chain.pki.client("hq")
    broker = ["--db", url, "--keys", str(keys), "--host", chain.broker.host, "--port",
              str(chain.broker.port), "--ca", str(files.ca), "--cert", str(files.cert),
              "--key", str(files.key)]
    assert hq_main(["rules", "stage", str(chain.tmp / "in-force.toml"), "--store", "S001",
                    "--catalogue", str(chain.tmp / "catalogue.json"), "--as", "mkt",
                    *broker]) == 0
    assert hq_main(["rules", "approve", "1", "--as", "admin", *broker]) == 0


async def _state(page: Any, row: str) -> str:
    return await page.inner_text(f"#rollout-{row} td:nth-child(3)")


def test_edit_backtest_stage_apply_approve_rollback(pki: Any, broker: Any,
                                                    tmp_path: Path) -> None:
    hq_chain = build_chain(tmp_path / "hq")  # HQ's database with the chain's history
    add_users(hq_chain)
    url = hq_chain.url
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    chain = Chain(tmp_path, pki, broker)
    chain.hq(url)
    keys = keys_dir(chain)
    mqtt = MqttConfig(broker.host, broker.port, "console-test", tls=pki.client("hq"),
                      backoff_initial=0.05, backoff_max=0.3)

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (s1, s2):
            await asyncio.to_thread(_baseline, url, chain, keys)
            await until(lambda: s1.link.rule_version == 2 and s2.link.rule_version == 2, 30)
            app = build(url, Rules.from_mapping(rules_data()), CARD_KEY, secure_cookies=False,
                        mqtt=mqtt, health_interval=0,
                        studio=rules_studio(url, IN_FORCE_TEXT, Keys.load(keys)))
            with serving(app) as site:
                async with async_page() as page:
                    await _author(page, site, s1, s2)
                    await _approve_and_roll_back(page, site, s1, s2)

    run(scenario(), timeout=240)


async def _author(page: Any, site: str, s1: Any, s2: Any) -> None:
    await sign_in(page, site, "mkt", "/rules")
    assert await page.input_value("textarea[name=rules]") == IN_FORCE_TEXT
    broken = IN_FORCE_TEXT.replace("points_per_yuan = 1 ", 'points_per_yuan = "三" ')
    await page.fill("textarea[name=rules]", broken)
    await page.click("#rules-check")
    await page.wait_for_selector("#rules-problem")
    assert "earn.points_per_yuan" in await page.inner_text("#rules-problem")
    await _shot(page, "release-1-error")

    fixed = IN_FORCE_TEXT.replace("points_per_yuan = 1 ", "points_per_yuan = 3 ")
    await page.fill("textarea[name=rules]", fixed)
    await page.click("#rules-check")
    await page.wait_for_selector("#rules-diff")
    assert "~ earn.points_per_yuan: 1 -> 3" in await page.inner_text("#rules-diff")
    await _shot(page, "release-2-diff")

    await page.fill("input[name=days]", "90")
    await page.click("#rules-backtest")
    await page.wait_for_selector("#backtest-chain", timeout=120_000)
    assert "校验通过" in await page.inner_text("#backtest-check")
    await _shot(page, "release-3-backtest")

    await page.click("#rules-stage")
    await page.wait_for_url(f"{site}/rules/releases/3")
    assert "门店试点" in await page.inner_text("#release-kind")
    assert await page.locator("#release-backtest").count() == 1
    # the page polls until S001's till has answered
    await page.wait_for_selector("#rollout-S001-T01-store-S001.rollout-applied", timeout=30_000)
    assert s1.link.rule_version == 3 and s1.terminal.ledger.store.rules.earn.points_per_yuan == 3
    assert s2.link.rule_version == 2  # S002 is not staged
    assert await page.locator("#rollout tbody tr").count() == 1
    await _shot(page, "release-4-staged-applied")


async def _approve_and_roll_back(page: Any, site: str, s1: Any, s2: Any) -> None:
    await page.context.clear_cookies()
    await sign_in(page, site, "admin", "/fleet")
    await page.wait_for_selector("#fleet-release")
    assert "v3" in await page.inner_text("#fleet-release h2")
    assert "已应用" in await _state(page, "S001-T01-store-S001")
    assert "门店 S001 v3" in (await page.inner_text("#term-S001-T01 td.bundles")).replace(
        "\n", " ")  # the scope in words (its code in the tooltip)
    await _shot(page, "release-5-fleet")

    await page.goto(f"{site}/rules/releases")
    await page.click("#policy-toggle")
    await page.wait_for_selector("#policy >> text=需要第二人批准")
    await page.goto(f"{site}/rules/releases/3")
    await page.click("#release-approve")
    await page.wait_for_url(f"{site}/rules/releases/4")
    assert "admin" in await page.inner_text("#release-approver")
    await page.wait_for_selector("#rollout-S002-T01-chain.rollout-applied", timeout=30_000)
    await page.wait_for_selector("#rollout-S001-T01-store-S001.rollout-applied")
    assert s2.link.rule_version == 4 and s2.terminal.ledger.store.rules.earn.points_per_yuan == 3
    await _shot(page, "release-6-chain-applied")

    await page.goto(f"{site}/rules/releases/2")
    await page.click("#release-rollback")
    await page.wait_for_url(f"{site}/rules/releases/5")
    assert "v2" in await page.inner_text("#release-kind")
    await page.wait_for_selector("#rollout-S002-T01-chain.rollout-applied", timeout=30_000)
    await page.wait_for_selector("#rollout-S001-T01-store-S001.rollout-applied")
    for store in (s1, s2):
        assert store.link.rule_version == 5
        assert store.terminal.ledger.store.rules.earn.points_per_yuan == 1
    await _shot(page, "release-7-rolled-back")
    await page.goto(f"{site}/rules/releases")
    history = await page.inner_text("#release-history")
    assert "回滚 ← v2" in history and "全连锁推送 ← v3" in history
    await _shot(page, "release-8-history")
