"""Hostile input (hypothesis, seeded): what a cashier keys, a card or scanner types, a stranger
sends over MQTT (events, acks, commands, member requests, bundles) and what a technician writes
in a config or provisioning file. Each either works or is refused with a clear error; nothing
crashes the till or HQ (no handler's traceback in the log), and a refusal stores nothing.

Size (``POSTERM_SUITE_SIZE``): CI runs 150 cashier sequences, 60 MQTT barrages of up to 8
messages and 300 config and 300 provisioning files.
"""

from __future__ import annotations

import asyncio
import io
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.core.configfile import ConfigError
from terminal.daemon.bootstrap import build
from terminal.daemon.config import load_config, parse_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from terminal.field.provision import ProvisionError, toml_dumps
from terminal.field.provision import parse as parse_provisioning
from terminal.protocol.topics import Topics
from tests.sync.conftest import mqtt_client
from tests.sync.harness import Chain, hq_applied
from tests.sync.test_bundle_flow import payload

from .chain import till_files
from .hostile import Crashes, cashier_commands, json_values, mutate, payloads
from .scripts import SIGN_IN
from .support import Counts, scaled

TABLES = ("sale", "sale_line", "ledger_entry", "lot", "member", "outbox")


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


def test_cashier_input_works_or_is_refused_and_refusals_store_nothing(tmp_path: Path) -> None:
    files = till_files(tmp_path)
    counts = Counts("hostile-cashier")
    loop = asyncio.new_event_loop()
    terminal = loop.run_until_complete(build(load_config(files.config), prepare=seed_demo))
    console = Console(terminal, io.StringIO())
    store = terminal.ledger.store

    def rows() -> dict[str, int]:
        def read() -> dict[str, int]:
            return {t: store.db.execute_sql(f"SELECT count(*) FROM {t}").fetchone()[0]
                    for t in TABLES}
        return loop.run_until_complete(terminal.ledger.executor.run(read))

    @_settings(scaled(150))
    @given(st.lists(cashier_commands, min_size=1, max_size=12))
    def sequence(commands: list[str]) -> None:
        loop.run_until_complete(console.command(SIGN_IN))
        for command in commands:
            before, refusals = rows(), terminal.till.refusal_count
            loop.run_until_complete(console.command(command))
            counts.inputs += 1
            if terminal.till.refusal_count > refusals:
                assert rows() == before, f"{command!r} was refused but changed the ledger"
        loop.run_until_complete(console.command("clear"))

    try:
        with Crashes() as crashes:
            sequence()
        counts.inputs_crashed = len(crashes.records)
        assert not crashes.records, crashes.describe()
        problems = loop.run_until_complete(terminal.ledger.executor.run(store.check_invariants))
        assert problems == []
    finally:
        loop.run_until_complete(terminal.close())
        loop.close()
        counts.write()


async def _valid_messages(chain: Chain) -> dict[str, list[bytes]]:
    """Real messages of each kind, for the mutations to start from."""
    till = chain.tills[0]
    await till.register("8000000001")
    await till.sell(2500, "8000000001")
    payloads = await till.run(lambda: [row[0] for row in till.store.db.execute_sql(
        "SELECT payload FROM outbox ORDER BY seq").fetchall()])
    ids = [json.loads(p)["id"] for p in payloads]
    ack = {"kind": "ack", "ids": ids[:1], "hq_time": "2026-11-02T10:00:00+00:00"}
    cmd = {"kind": "command", "command": "print_status", "id": "c1"}
    request = {"kind": "balance", "card_hash": "00" * 32}
    bundle = chain.keys.bundle("chain", 2, payload(chain, 2))
    return {"events": [p.encode() for p in payloads],
            "acks": [json.dumps(ack).encode()],
            "cmd": [json.dumps(cmd).encode()],
            "members/req": [json.dumps(request).encode()],
            "bundle": [bundle]}


def test_mqtt_payloads_are_applied_or_refused_and_crash_nothing(tmp_path: Path, pki: Any,
                                                                broker: Any) -> None:
    counts = Counts("hostile-mqtt")
    chain = Chain(tmp_path, pki, broker)
    till = chain.till()
    hq = chain.hq()
    loop = asyncio.new_event_loop()
    topics = Topics()
    ident = ("S001", "T01")
    crashes = Crashes()

    async def barrage(channel: str, messages: list[bytes]) -> None:
        as_hq = channel in ("acks", "cmd", "bundle")
        topic = (topics.bundle("chain") if channel == "bundle"
                 else topics.terminal(*ident, channel))
        async with mqtt_client(pki, broker, "hq" if as_hq else "/".join(ident),
                               client_id=f"stranger-{channel.replace('/', '-')}") as client:
            for payload in messages:
                await client.publish(topic, payload, retain=channel == "bundle")
        # the till still sells and HQ still acks: everything sent before has been handled
        await till.sell(100)
        await chain.drained(30)

    try:
        loop.run_until_complete(chain.start())
        valid = loop.run_until_complete(_valid_messages(chain))
        loop.run_until_complete(chain.drained(30))
        version = till.link.rule_version
        channel_strategy = st.sampled_from(sorted(valid))

        @_settings(scaled(60))
        @given(st.data())
        def send(data: st.DataObject) -> None:
            channel = data.draw(channel_strategy)
            messages = data.draw(st.lists(payloads(valid[channel]), min_size=1, max_size=8))
            loop.run_until_complete(barrage(channel, messages))
            counts.inputs += len(messages)

        with crashes:
            send()
        events = loop.run_until_complete(till.events())
        applied = loop.run_until_complete(hq_applied(hq))
        assert {i for i, outcome in applied.items() if outcome == "applied"} <= set(events)
        assert till.link.rule_version in (version, 2)  # only the validly signed bundle
        assert loop.run_until_complete(till.run(till.store.check_invariants)) == []
    finally:
        loop.run_until_complete(chain.stop())
        loop.close()
        counts.inputs_crashed = len(crashes.records)
        counts.write()
    assert not crashes.records, crashes.describe()


def _base_config(tmp_path: Path) -> dict[str, Any]:
    files = till_files(tmp_path)
    return tomllib.loads(files.config.read_text())


def _read_or_named(suite: str, inputs: st.SearchStrategy[Any], parse: Callable[[Any, str], Any],
                   error: type[Exception], name: str) -> None:
    """Every input ``parse`` reads, or refuses with an ``error`` naming the file (``name``);
    the number tried goes to the fault suite's table."""
    counts = Counts(suite)

    @_settings(scaled(300))
    @given(inputs)
    def check(document: Any) -> None:
        counts.inputs += 1
        try:
            parse(document, name)
        except error as exc:
            assert name in str(exc), exc

    try:
        check()
    finally:
        counts.write()


def test_config_files_work_or_name_the_problem(tmp_path: Path) -> None:
    base = _base_config(tmp_path)

    @st.composite
    def documents(draw: st.DrawFn) -> Any:
        return mutate(base, draw)

    _read_or_named("hostile-config", documents(), parse_config, ConfigError, "fuzzed.toml")


PROVISIONING_TEXT = st.one_of(
    st.text(max_size=300),
    st.dictionaries(st.sampled_from(["terminal", "broker", "hq", "devices", "x"]),
                    st.dictionaries(st.text(max_size=12), json_values.filter(
                        lambda v: v is not None), max_size=5), max_size=4).map(
        lambda d: toml_dumps(
            {k: {kk: vv for kk, vv in v.items() if not isinstance(vv, list | dict)}
             for k, v in d.items()})),
)


def test_provisioning_files_work_or_name_the_problem() -> None:
    _read_or_named("hostile-provisioning", PROVISIONING_TEXT, parse_provisioning, ProvisionError,
                   "boot/posterm.txt")
