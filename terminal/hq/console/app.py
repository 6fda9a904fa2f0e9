"""Assembling the console: database, reader, routes (the composition root of the web side)."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from terminal.hq.care.config import CareConfig
from terminal.hq.chain_ledger import HQ_IDENTITY
from terminal.hq.console.commands import Commander
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.fleet import DEFAULT_THRESHOLDS, FleetReader, Thresholds
from terminal.hq.console.members import Reader
from terminal.hq.console.operations import Operator
from terminal.hq.console.routes import ROUTES
from terminal.hq.console.rules_pages import Studio
from terminal.hq.console.web import Console, create_app
from terminal.hq.member_ops.service import MemberOps
from terminal.hq.pki.revocation import Revoker
from terminal.hq.rules_studio.jobs import Jobs
from terminal.hq.rules_studio.pushing import Keys
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore
from terminal.protocol.mqtt import MqttConfig
from terminal.protocol.topics import Topics


def build(db_url: str, rules: Rules, card_key: bytes, *, secure_cookies: bool = True,
          mqtt: MqttConfig | None = None, topics: Topics | None = None,
          health_interval: float = 300.0, thresholds: Thresholds = DEFAULT_THRESHOLDS,
          studio: Studio | None = None, revoker: Revoker | None = None,
          care_config: CareConfig | None = None) -> ASGIApp:
    """The console; with ``mqtt`` (HQ's broker identity) it sends commands to terminals; with
    ``studio`` (:func:`rules_studio`) it has the rules studio; with ``revoker`` (HQ's CA and the
    broker's register) IT can cut a terminal off on the enrollment page; ``care_config`` has
    the member-care templates a campaign's preview fills (None: the built-in ones)."""
    db = ConsoleDb(db_url)
    reader = Reader(rules, card_key, LedgerStore(db.db, rules, card_key, HQ_IDENTITY,
                                                 outbox=False))
    operator = Operator(MemberOps(db.db, rules, card_key), reader, db.call)
    commander = None if mqtt is None else Commander(db, mqtt, topics,
                                                    health_interval=health_interval)
    return create_app(Console(db, reader, operator, FleetReader(rules.zone, thresholds),
                              commander, secure_cookies, studio, revoker, care_config), ROUTES)


def rules_studio(db_url: str, rules_text: str, keys: Keys | None = None,
                 catalogue: list[Any] | None = None, settings: dict[str, Any] | None = None,
                 stage_store: str = "S001") -> Studio:
    """The rules studio over the rules in force as written (``rules_text``); with ``keys``
    (HQ's signing key) and a broker it stages and pushes bundles carrying ``catalogue`` and
    ``settings`` (None: the newest release's), to ``stage_store`` first."""
    return Studio(rules_text, Jobs(db_url), keys, catalogue, settings, stage_store)
