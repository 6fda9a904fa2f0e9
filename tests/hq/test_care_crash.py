"""A campaign's sender SIGKILLed mid-campaign: `posterm-hq campaign send` in its own process,
killed while the gateway holds one of its requests, then run again. Every message reaches the
gateway under its one id; the only id seen twice is the one in flight at the kill, and each
member's number got one message.

The campaign is created with `posterm-hq campaign create`, one consent recorded with
`posterm-hq campaign consent`, the others through the service (the chain's 20 members)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminal.hq.care.dispatch import ALL_MODELS
from terminal.hq.care.models import CareMessage
from terminal.hq.care.service import Care
from terminal.hq.console.roles import Principal
from terminal.hq.database import open_hq_database
from terminal.loyalty.clock import Moment
from terminal.loyalty.operations import Registration
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store.binding import bound, bound_call
from terminal.loyalty.store.models import Member
from tests.hq.test_analytics import KEY, RICE, RULES, Chain, line
from tests.support.care_servers import Gateway, gateway

pytestmark = pytest.mark.slow  # processes killed and started again (the fault suites' tier)

MEMBERS = 20
HELD = 8  # the request the sender is killed on


def phone(n: int) -> str:
    return f"1380000{n:04d}"


def card(n: int) -> str:
    return f"82000{n:05d}"


def build(directory: Path) -> str:
    url = str(directory / "hq.db")
    (directory / "tills").mkdir()
    chain = Chain(url, directory / "tills")
    at = datetime.now(UTC) - timedelta(days=40)
    till = chain.tills["S001"]
    try:
        for n in range(MEMBERS):
            when = Moment(at + timedelta(minutes=n))
            till.call(till.store.register, Registration(card=card(n), name=f"会员{n}",
                                                        phone=phone(n), operator="c"), when)
            till.known.add(card(n))
            chain.sell("S001", card(n), when, line(RICE, 1))
    finally:
        chain.close()
    return url


def hq(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "terminal.hq.cli", *args], text=True,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_sigkill_mid_campaign_sends_each_message_once(tmp_path: Path) -> None:
    url = build(tmp_path)
    key_file = tmp_path / "card.key"
    key_file.write_bytes(KEY)
    common = ["--db", url, "--rules", str(RULES)]
    hq("campaign", "consent", card(0), "--channel", "sms", "--yes", "--address", phone(0),
       "--card-key-file", str(key_file), "--source", "till", *common)
    db = open_hq_database(url)
    care = Care(db, load_rules(RULES), KEY)
    who = Principal("ann", "marketing")
    numbers = bound_call(db, lambda: {m.id: m.card_last4 for m in Member.select()})
    for member, last4 in numbers.items():
        if last4 != card(0)[-4:]:
            care.consent(who, member, "sms", True, phone(int(last4)))
    created = json.loads(hq("campaign", "create", "--name", "唤醒", "--segment", "dormant",
                            "--days", "30", "--channel", "sms", *common).stdout)
    preview = json.loads(hq("campaign", "preview", str(created["id"]), *common).stdout)
    sample = preview.pop("sample")
    assert preview == {"campaign": created["id"], "segment": MEMBERS, "reachable": MEMBERS}
    assert sample["reachable"]
    assert sample["text"].startswith(f"【会员中心】{sample['name']}，好久不见")
    with gateway() as server:
        config = tmp_path / "care.toml"
        config.write_text(f'[sms]\nurl = "{server.url}"\napi_key = "{Gateway.API_KEY}"\n'
                          '[policy]\nquiet_start = "00:00"\nquiet_end = "00:00"\n'
                          'retry_seconds = 0\n', encoding="utf-8")
        send = ["campaign", "send", str(created["id"]), "--care-config", str(config), *common]
        server.hold_at(HELD)
        process = subprocess.Popen([sys.executable, "-m", "terminal.hq.cli", *send],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert server.holding.wait(120), "the sender never reached the held request"
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        server.release()
        with bound(db, ALL_MODELS):
            states = Counter(row.state for row in CareMessage.select())
        assert states == {"sent": HELD - 1, "sending": 1, "pending": MEMBERS - HELD}
        result = json.loads(hq(*send).stdout)
        assert result["run"]["sent"] == MEMBERS - HELD + 1
        assert "queued" not in result  # queued once, by the first run
    with bound(db, ALL_MODELS):
        rows = list(CareMessage.select())
    db.close()
    assert {row.state for row in rows} == {"sent"} and len(rows) == MEMBERS
    ids = {row.id for row in rows}
    seen = Counter(request.key for request in server.requests)
    assert set(seen) == ids == set(server.delivered)  # every message, under its one id
    assert len(server.requests) == MEMBERS + 1
    twice = [key for key, count in seen.items() if count > 1]
    assert twice == [server.requests[HELD - 1].key] and seen[twice[0]] == 2
    assert sorted(body["to"] for body in server.delivered.values()) == sorted(
        phone(n) for n in range(MEMBERS))
    status = hq("campaign", "status", str(created["id"]), *common).stdout
    assert f"sent {MEMBERS}" in status and "13800" not in status
