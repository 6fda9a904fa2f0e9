"""Member operations end to end: made in the console in Chromium, carried by the real collector
through a real Mosquitto to real tills (simulated hardware), which refuse or serve the card as
HQ says. Screenshots of every console page on the way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from terminal.hq.console.app import build
from terminal.hq.console.models import ConsoleCommand
from terminal.hq.models import TerminalSeen
from terminal.loyalty.rules import Rules
from terminal.protocol.mqtt import MqttConfig
from tests.console.chain import add_user_at, on_console_db, sign_in
from tests.support.browser import CHROMIUM, SCREENSHOTS, async_page, serving
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, rules_data, until
from tests.sync.test_across_stores import CARD, _register_and_earn, _stores

pytestmark = [pytest.mark.slow,  # Chromium
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="Debian's chromium is missing: run scripts/setup.sh")]


@pytest.fixture
def chain(pki: Any, broker: Any, tmp_path: Path) -> Chain:
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    built = Chain(tmp_path, pki, broker)
    built.hq(member_states=True)
    return built


@contextlib.asynccontextmanager
async def _member_page_open(tmp_path: Path, chain: Chain) -> AsyncIterator[tuple[Any, Any, Any]]:
    """Two tills (S001, S002) whose member CARD earned at S002 and reached HQ; the console in
    Chromium, signed in as member service, on that member's page. Yields (s1, s2, page)."""
    url = str(tmp_path / "hq.db")
    async with _stores(tmp_path, chain) as (s1, s2):
        await _register_and_earn(s2, CARD)
        await until(s2.drained, 20)
        await asyncio.to_thread(add_user_at, url, "svc", "service")
        app = build(url, Rules.from_mapping(rules_data()), CARD_KEY, secure_cookies=False)
        with serving(app) as site:
            async with async_page() as page:
                await sign_in(page, site, "svc")
                await page.fill("input[name=q]", CARD)
                await page.press("input[name=q]", "Enter")
                await page.click("table.grid tbody td a")
                yield s1, s2, page


async def _operate(page: Any, op: str, reason: str, **fields: str) -> None:
    """Fill the member page's ``op`` form (``fields``, then the reason), submit it and wait for
    the page that says it was done."""
    for name, value in {**fields, "reason": reason}.items():
        await page.fill(f"form[action$='/op/{op}'] input[name={name}]", value)
    await page.click(f"#op-{op}")
    await page.wait_for_selector("[role=status]")


async def _swiped_once(store: Any, state: str) -> str | None:
    """Once HQ's word that the member's card is ``state`` reached the till: the card swiped,
    what the till refused (None: nothing)."""
    await until(lambda: store.card_is(CARD, state), 20)
    await store.do(f"s {CARD}")
    return store.till.refused


async def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_freeze_made_in_the_console_is_refused_at_every_till(chain: Chain,
                                                               tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _member_page_open(tmp_path, chain) as (s1, s2, page):
            await page.wait_for_selector("#op-freeze")
            await _operate(page, "freeze", "卡片被盗 stolen card")
            assert await page.inner_text("#card-state") == "已冻结"
            await _shot(page, "member-frozen")

            for store in (s1, s2):
                assert await _swiped_once(store, "frozen") == (
                    f"Card ****{CARD[-4:]} is frozen by HQ: 卡片被盗 stolen card")
                await store.do("clear")

            await _operate(page, "unfreeze", "card found")
            assert await page.inner_text("#card-state") == "正常"
            await _shot(page, "member-unfrozen")
            for store in (s1, s2):
                assert await _swiped_once(store, "active") is None

    run(scenario(), timeout=120)


NEW = "8000999977"


def test_a_lost_card_replaced_in_the_console_is_refused_and_the_new_one_shows_the_balance(
        chain: Chain, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with _member_page_open(tmp_path, chain) as (s1, s2, page):
            await page.wait_for_selector("#op-replace")
            balance = int((await page.inner_text(".stat .figure")).replace(",", ""))
            await _operate(page, "replace", "挂失 reported lost", new_card=NEW)
            assert f"···· {NEW[-4:]}" in await page.inner_text("dl.profile")
            await _shot(page, "member-card-replaced")
            for store in (s1, s2):
                await until(lambda store=store: store.card_is(CARD, "retired"), 20)
                await until(lambda store=store: store.card_is(NEW, "active"), 20)
                await store.do(f"s {CARD}")
                assert store.till.refused == (f"Card ****{CARD[-4:]} is retired by HQ (挂失 "
                                              "reported lost): use the member's new card")
                await store.do("clear", f"s {NEW}")
                assert store.till.refused is None, store.till.refused
                assert store.pole[1].split()[:2] == ["Points", str(balance)], store.pole
                await store.do("clear")

    run(scenario(), timeout=120)


def test_a_command_sent_from_the_fleet_page_is_carried_out_and_its_result_shown(
        chain: Chain, tmp_path: Path) -> None:
    url = str(tmp_path / "hq.db")
    mqtt = MqttConfig(chain.broker.host, chain.broker.port, "console-test",
                      tls=chain.pki.client("hq"), backoff_initial=0.05, backoff_max=0.3)

    async def scenario() -> None:
        async with _stores(tmp_path, chain):
            await asyncio.to_thread(add_user_at, url, "it", "admin")
            app = build(url, Rules.from_mapping(rules_data()), CARD_KEY, secure_cookies=False,
                        mqtt=mqtt, health_interval=0)
            with serving(app) as site:
                async with async_page((1280, 800)) as page:
                    await sign_in(page, site, "it")
                    await page.click("nav >> text=终端")
                    await page.wait_for_selector("#term-S001-T01")
                    await until(lambda: _seen_online(url, 2), 20)
                    await page.reload()
                    await page.wait_for_selector("#term-S002-T01 >> text=在线")
                    await _shot(page, "fleet")
                    await page.click("text=S001/T01")
                    await page.click("#cmd-print_status")
                    await page.wait_for_selector("[role=status]")
                    await until(lambda: _answered(url), 20)
                    await page.reload()
                    assert "已完成" in await page.inner_text("#command-history")
                    await _shot(page, "terminal-command-done")

    run(scenario(), timeout=120)


async def _seen_online(url: str, count: int) -> bool:
    def read() -> int:
        return on_console_db(url, lambda: TerminalSeen.select()
                             .where(TerminalSeen.online == True).count())  # noqa: E712
    return await asyncio.to_thread(read) >= count


async def _answered(url: str) -> bool:
    def read() -> list[str]:
        return on_console_db(url, lambda: [c.state for c in ConsoleCommand.select()])
    return await asyncio.to_thread(read) == ["done"]


