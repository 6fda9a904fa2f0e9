"""Member care's question at registration, end to end (issue 13): a till built as the daemon
builds it, driven by synthetic key and card events through the real decoding, asks each new
member on the pole; the answers travel as ``consent`` events over a real Mosquitto to HQ's
collector, which records them in care's consent store with their source (till, store,
terminal, time); the console's consent page shows them; the till drops the number from its
outbox once HQ acknowledged the event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from terminal.hq.care import consent
from terminal.hq.care.models import CareConsent
from terminal.hq.collector import Collector
from terminal.hq.console.app import build
from terminal.loyalty.store.models import Member
from tests.console.chain import add_user_at
from tests.console.test_browser import signed_in
from tests.console.test_http import BASE, login
from tests.support.browser import CHROMIUM, browser, serving, shot
from tests.sync.conftest import run
from tests.sync.harness import CARD_KEY, Chain, until
from tests.sync.test_across_stores import _stores

ANSWERS = {"8000555501": ("13955550001", "1"),  # yes
           "8000555502": ("13955550002", "0"),  # no
           "8000555503": ("13955550003", "clear")}  # skipped: as a till without the question


@pytest.fixture
def hq_chain(pki: Any, broker: Any, tmp_path: Path) -> tuple[Chain, Collector]:
    (tmp_path / "card.key").write_bytes(CARD_KEY)
    chain = Chain(tmp_path, pki, broker)
    return chain, chain.hq()


def test_the_till_asks_and_hq_records_the_answers(hq_chain: tuple[Chain, Collector],
                                                   tmp_path: Path) -> None:
    chain, hq = hq_chain
    members: dict[str, str] = {}

    async def scenario() -> None:
        async with _stores(tmp_path, chain) as (_, s2):
            for card, (phone, answer) in ANSWERS.items():
                await s2.do(f"s {card}", f"{phone} enter")
                assert s2.till.mode == "consent" and s2.pole == (
                    "Member SMS offers?", "1=yes 0=no, Enter"), s2.till.message
                await s2.do(answer if answer == "clear" else f"{answer} enter")
                assert s2.till.mode == "ready" and s2.till.refused is None, s2.till.message
                if answer == "1":
                    assert s2.pole == ("SMS offers: yes", "reply TD to stop")
            await until(s2.drained, 60)  # every event acknowledged by HQ

            def read() -> list[tuple[Any, ...]]:
                for card in ANSWERS:
                    members[card] = Member.get(Member.card_last4 == card[-4:]).id
                return [(row.member, row.channel, row.granted, row.source, row.store,
                         row.terminal, row.actor) for row in
                        CareConsent.select().order_by(CareConsent.id)]
            rows = await hq.ledger.thread.run(read)
            yes, no, _ = (members[card] for card in ANSWERS)
            assert rows == [(yes, "sms", True, "till", "S002", "T01", "cashier"),
                            (no, "sms", False, "till", "S002", "T01", "cashier")]
            states = await hq.ledger.thread.run(
                lambda: {card: consent.state(member)["sms"] for card, member in
                         members.items()})
            assert [state["granted"] for state in states.values()] == [True, False, False]
            assert states["8000555501"]["hint"] == "…0001"
            # The till keeps no number once HQ has the event.
            payloads = await s2.sql("SELECT payload FROM outbox WHERE kind = 'consent'")
            bodies = [json.loads(payload)["body"] for (payload,) in payloads]
            assert [body["granted"] for body in bodies] == [True, False]
            assert all("address" not in body for body in bodies)
            assert not any(phone in payload for (payload,) in payloads
                           for phone, _ in ANSWERS.values())

    run(scenario(), timeout=120)

    url = str(tmp_path / "hq.db")
    add_user_at(url, "svc", "service")
    app = build(url, chain.rules, CARD_KEY, secure_cookies=False)
    with TestClient(app, base_url=BASE, follow_redirects=False) as svc:
        login(svc, "svc")
        page = svc.get(f"/care/consent/{members['8000555501']}")
        assert page.status_code == 200
        history = page.text.split('id="consent-history"')[1]
        assert "收银机" in history and "S002/T01" in history and "同意接收" in history
        assert "13955550001" not in page.text
        refused = svc.get(f"/care/consent/{members['8000555502']}").text
        assert "退订" in refused.split('id="consent-history"')[1]
        silent = svc.get(f"/care/consent/{members['8000555503']}").text
        assert "未回答即不同意" in silent
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/setup.sh"
    with serving(app) as site, browser() as chromium:  # what member service sees
        context, page = signed_in((site, chromium), "svc")
        page.goto(f"{site}/care/consent/{members['8000555501']}")
        page.wait_for_selector("#consent-history >> text=S002/T01")
        assert "收银机" in page.inner_text("#consent-history")
        shot(page, "care-consent-from-till")
        context.close()
