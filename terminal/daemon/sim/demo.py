"""The simulation's demo state, made on first start: rules, catalogue, card key, a cashier and a
manager, and a member card with points enough to try a redemption."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from terminal.app.ledger import LedgerGateway
from terminal.daemon.config import Config, parse_config
from terminal.loyalty.errors import UnknownCard
from terminal.loyalty.operations import Registration
from terminal.loyalty.store.models import Operator
from terminal.loyalty.store.operators import set_operator

HERE = Path(__file__).parent
DEMO_CARD = "8000123456"
DEMO_PHONE = "13800000001"
CASHIER, CASHIER_PIN = 1, "1234"  # operator number and PIN
MANAGER, MANAGER_PIN = 2, "9999"
DEMO_POINTS = 1000  # on top of the registration bonus, so a redemption can be tried at once


def demo_rules() -> Path:
    """The chain's example rules when ../shared is beside the clone, else the shipped copy."""
    shared = Path(os.environ.get("POSTERM_SHARED", "../shared")) / "examples" / "rules.toml"
    return shared if shared.is_file() else HERE / "demo_rules.toml"


def demo_config(state_dir: Path) -> Config:
    state_dir.mkdir(parents=True, exist_ok=True)
    key = state_dir / "card.key"
    if not key.exists():
        key.write_text(secrets.token_hex(32))
        key.chmod(0o600)
    return parse_config(demo_config_data(state_dir, key), f"simulation ({state_dir})")


def demo_config_data(state_dir: Path, card_key_file: Path,
                     rules_file: Path | None = None) -> dict[str, Any]:
    """The simulated till's config as data: S001/T01 on simulated hardware (a chain on one
    machine adds its ``[broker]`` and ``[hq]``)."""
    return {
        "terminal": {"store": "S001", "terminal_id": "T01"},
        "paths": {"state_dir": str(state_dir), "database": str(state_dir / "sim.db")},
        "loyalty": {"rules_file": str(rules_file or demo_rules()),
                    "card_key_file": str(card_key_file),
                    "catalogue_file": str(HERE / "demo_catalogue.toml"),
                    "departments": ["fresh", "household"], "receipt_png": True},
        "input": {name: {"backend": "simulated", "role": role}
                  for name, role in (("reader", "msr"), ("scanner", "scanner"),
                                     ("keypad", "keypad"))},
        "printer": {"backend": "dummy", "paper_mm": 58},
        "drawer": {"enabled": True},
        "pole": {"backend": "pty"},
        "lcd": {"backend": "dummy"},
    }


async def seed_demo(ledger: LedgerGateway) -> None:
    """Operators and the demo member, once (a restarted simulation keeps its ledger)."""
    def operators() -> None:
        if Operator.select().count() == 0:
            db, key = ledger.store.db, ledger.pin_key
            set_operator(db, key, CASHIER, "cashier", "cashier", CASHIER_PIN, shown="李娜")
            set_operator(db, key, MANAGER, "manager", "manager", MANAGER_PIN, shown="王强")
    await ledger.executor.run(operators)
    try:
        await ledger.member(DEMO_CARD)
    except UnknownCard:
        await ledger.register(Registration(card=DEMO_CARD, name="王小明", phone=DEMO_PHONE,
                                           operator="demo"))
        await ledger.adjust(DEMO_CARD, DEMO_POINTS, "demo points", "demo")
