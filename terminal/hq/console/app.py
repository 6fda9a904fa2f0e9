"""Assembling the console: database, reader, routes (the composition root of the web side)."""

from __future__ import annotations

from starlette.types import ASGIApp

from terminal.hq.chain_ledger import HQ_IDENTITY
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.members import Reader
from terminal.hq.console.operations import Operator
from terminal.hq.console.routes import ROUTES
from terminal.hq.console.web import Console, create_app
from terminal.hq.member_ops.service import MemberOps
from terminal.loyalty.rules import Rules
from terminal.loyalty.store import LedgerStore


def build(db_url: str, rules: Rules, card_key: bytes, *, secure_cookies: bool = True
          ) -> ASGIApp:
    db = ConsoleDb(db_url)
    reader = Reader(rules, card_key, LedgerStore(db.db, rules, card_key, HQ_IDENTITY,
                                                 outbox=False))
    operator = Operator(MemberOps(db.db, rules, card_key), reader, db.call)
    return create_app(Console(db, reader, operator, secure_cookies), ROUTES)
