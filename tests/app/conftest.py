"""The cashier app on simulated hardware, driven by the simulation's own command lines."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from terminal.daemon.bootstrap import Terminal, build
from terminal.daemon.config import parse_config
from terminal.daemon.sim.console import Console
from terminal.daemon.sim.demo import seed_demo
from tests.support.terminal_view import TerminalView
from tests.support.till_config import till_config_data

SH = ZoneInfo("Asia/Shanghai")
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POSTERM_UPDATE_GOLDEN") == "1"


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with POSTERM_UPDATE_GOLDEN=1 once"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs from its golden"


def till_config(tmp: Path, examples: Path, devices: dict[str, dict[str, Any]] | None = None,
                **printer: Any) -> Any:
    """The test till's config: ``printer`` options on the dummy printer, ``devices`` added."""
    return parse_config(till_config_table(tmp, examples, devices, **printer), "test.toml")


def till_config_table(tmp: Path, examples: Path,
                      devices: dict[str, dict[str, Any]] | None = None,
                      **printer: Any) -> dict[str, dict[str, Any]]:
    """:func:`till_config` as its TOML tables (for a config file a command reads)."""
    key = tmp / "card.key"
    key.write_text("test-card-key-0123456789abcdef")
    data = till_config_data(tmp, key, devices={
        "printer": {"backend": "dummy", "paper_mm": 58, **printer}, **(devices or {})})
    data["loyalty"]["rules_file"] = str(examples / "rules.toml")
    return data


class TillBench(TerminalView):
    """One terminal on a private loop; ``do`` runs simulation command lines. ``devices`` adds
    config sections (an LCD, say); ``link`` replaces the standalone HQ link."""

    def __init__(self, tmp: Path, examples: Path,
                 devices: dict[str, dict[str, Any]] | None = None, link: Any = None) -> None:
        self.now = datetime(2026, 3, 5, 18, 30, tzinfo=SH)  # a Thursday: no promotion
        self.runner = asyncio.Runner()
        self.terminal: Terminal = self.runner.run(build(
            till_config(tmp, examples, devices), link=link, clock=lambda: (self.now, True),
            prepare=seed_demo))
        self.console = Console(self.terminal, io.StringIO())

    def do(self, *lines: str) -> None:
        for line in lines:
            self.runner.run(self.console.command(line))

    @property
    def receipts(self) -> list[str]:
        return [p.text for p in self.terminal.desk.printed]

    def balance(self, card: str = "8000123456") -> int:
        return self.runner.run(self.terminal.ledger.member(card)).balance

    def close(self) -> None:
        try:
            self.runner.run(self.terminal.close())
        finally:
            self.runner.close()


@pytest.fixture
def bench(tmp_path: Path, examples: Path) -> Iterator[TillBench]:
    made = TillBench(tmp_path, examples)
    yield made
    made.close()


@pytest.fixture
def cashier(bench: TillBench) -> TillBench:
    """Signed in as the demo cashier (operator 1, PIN 1234; the manager is 2, PIN 9999)."""
    bench.do("1 enter 1234 enter")
    assert bench.till.operator.name == "cashier"
    return bench
