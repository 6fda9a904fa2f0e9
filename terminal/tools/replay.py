"""`posterm replay`: run a scenario file's steps against the real engine and store.

Business steps (at, register, sale, refund, exchange, adjust, expire) call the ledger store
directly. Device steps (swipe, scan, keys) go through the real input decoding into the cashier
flow with simulated hardware (``terminal.tools.device_steps``); each adds an entry under
``devices`` with the pole display's two lines and the receipts printed. A refused step is reported
under ``errors`` with its index and the reason, changes nothing, and the run goes on. The result
is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from terminal.loyalty.errors import InvalidInput, Refused, RulesError
from terminal.loyalty.operations import Registration, SaleRequest
from terminal.loyalty.pricing import Line
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore

# Replay databases are scratch copies; a terminal's real card key comes from provisioning.
REPLAY_CARD_KEY = b"posterm-replay-card-key-not-for-production"


class ScenarioError(ValueError):
    """The scenario file itself is malformed (not a refused step)."""


def _need(step: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = step.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInput(f"{what}: '{key}' is missing or not {_kind_name(kind)}", key)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "a whole number", list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise InvalidInput(f"'at' must be an ISO 8601 time, not {text!r}", "at")
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"'at' {text!r} is not an ISO 8601 time", "at") from exc
    if at.tzinfo is None:
        raise InvalidInput(f"'at' {text!r} carries no zone", "at")
    return at


def parse_lines(items: Any, what: str) -> list[Line]:
    if not isinstance(items, list):
        raise InvalidInput(f"{what}: 'lines' must be a list", "lines")
    lines = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"{what}: line {number} is not a table", "lines")
        lines.append(Line(
            sku=item.get("sku"),  # type: ignore[arg-type]  # checked by check_lines
            qty=item.get("qty"),  # type: ignore[arg-type]
            price_fen=item.get("price_fen"),  # type: ignore[arg-type]
            name=str(item.get("name", "")),
            category=str(item.get("category", "")),
        ))
    return lines


class Replay:
    """Runs steps in order; each ``step_<kind>`` takes the step's body."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.at: datetime | None = None
        self.trusted = True
        self.online = True
        self.cards: list[str] = []
        self.out: dict[str, list[Any]] = {
            "sales": [], "refunds": [], "exchanges": [], "adjustments": [], "expiries": [],
            "errors": [],
        }
        self.index = 0
        self.devices: Any = None  # terminal.tools.device_steps.DeviceSteps, made on first use

    def moment(self) -> Any:
        if self.at is None:
            raise InvalidInput("no 'at' step has set the clock yet", "at")
        return self.store.moment(self.at, self.trusted)

    def run(self, steps: list[Any]) -> dict[str, Any]:
        try:
            self._run_steps(steps)
        finally:
            if self.devices is not None:
                self.devices.close()
        self.out["members"] = [self._member(card) for card in self.cards]
        return self.out

    def _run_steps(self, steps: list[Any]) -> None:
        for index, step in enumerate(steps):
            self.index = index
            try:
                if not isinstance(step, dict) or len(step) != 1:
                    raise InvalidInput("a step is a table with exactly one kind", "step")
                ((kind, body),) = step.items()
                handler: Callable[[Any], None] | None = getattr(self, f"step_{kind}", None)
                if handler is None:
                    raise InvalidInput(f"unknown step kind {kind!r}", "step")
                handler(body)
            except Refused as exc:
                self.out["errors"].append({"step": index, "why": exc.message, "rule": exc.rule})

    def _member(self, card: str) -> dict[str, Any]:
        view = self.store.member(card, self.moment())
        return {
            "card": card,
            "name": view.name,
            "tier": view.tier,
            "balance": view.balance,
            "debt": view.debt,
            "qualifying_spend_fen": view.qualifying_spend_fen,
            "expiring": [{"points": e.points, "expires": e.expires_at.isoformat()}
                         for e in view.expiring],
        }

    def step_at(self, body: Any) -> None:
        if isinstance(body, dict):
            self.at = _time(body.get("time"))
            self.trusted = bool(body.get("trusted", True))
        else:
            self.at, self.trusted = _time(body), True

    def step_hq(self, body: Any) -> None:
        """``{"hq": "online" | "offline"}``: whether HQ answers (offline allowance applies)."""
        if body not in ("online", "offline"):
            raise InvalidInput("'hq' is online or offline", "hq")
        self.online = body == "online"

    def step_register(self, body: Any) -> None:
        body = _need({"register": body}, "register", dict, "register")
        birthday = body.get("birthday")
        try:
            born = date.fromisoformat(birthday) if birthday is not None else None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"birthday {birthday!r} is not YYYY-MM-DD",
                               "register.birthday") from exc
        card = _need(body, "card", str, "register")
        self.store.register(Registration(
            card=card, name=str(body.get("name", "")), phone=body.get("phone"),
            birthday=born, referrer_card=body.get("referrer"),
            operator=str(body.get("operator", "replay")),
        ), self.moment())
        self.cards.append(card)

    def step_sale(self, body: Any) -> None:
        body = _need({"sale": body}, "sale", dict, "sale")
        req = SaleRequest(
            id=_need(body, "id", str, "sale"),
            lines=parse_lines(body.get("lines"), "sale"),
            card=body.get("card"),
            tender=body.get("tender", "cash"),
            redeem_points=body.get("redeem_points", 0),
            operator=str(body.get("operator", "replay")),
        )
        result = self.store.sale(req, self.moment(), online=self.online)
        self.out["sales"].append({
            "id": result.id, "list_fen": result.list_fen, "discount_fen": result.discount_fen,
            "deduction_fen": result.deduction_fen, "paid_fen": result.paid_fen,
            "points_earned": result.points_earned, "points_redeemed": result.points_redeemed,
            "why": result.why,
        })

    def step_refund(self, body: Any) -> None:
        body = _need({"refund": body}, "refund", dict, "refund")
        lines = body.get("lines")
        request = None
        if lines is not None:
            if not isinstance(lines, list) or not all(isinstance(x, dict) for x in lines):
                raise InvalidInput("refund: 'lines' must be a list of tables", "refund.lines")
            request = [(x.get("sku"), x.get("qty")) for x in lines]
        result = self.store.refund(
            _need(body, "sale", str, "refund"), request, self.moment(),
            operator=str(body.get("operator", "replay")), refund_id=body.get("id"),
            kind="void" if body.get("void") else "refund",
        )
        self.out["refunds"].append({
            "id": result.id, "sale": result.sale, "refunded_fen": result.refunded_fen,
            "points_reversed": result.points_reversed,
            "points_restored": result.points_restored, "repeated": result.repeated,
        })

    def step_exchange(self, body: Any) -> None:
        body = _need({"exchange": body}, "exchange", dict, "exchange")
        result = self.store.exchange(
            _need(body, "card", str, "exchange"), _need(body, "sku", str, "exchange"),
            body.get("qty", 1), self.moment(), online=self.online,
            operator=str(body.get("operator", "replay")),
        )
        self.out["exchanges"].append({"id": result.id, "sku": result.sku, "qty": result.qty,
                                      "points": result.points})

    def step_adjust(self, body: Any) -> None:
        body = _need({"adjust": body}, "adjust", dict, "adjust")
        card = _need(body, "card", str, "adjust")
        view = self.store.adjust(card, body.get("points"), str(body.get("reason", "")),
                                 str(body.get("operator", "")), self.moment())
        self.out["adjustments"].append({"card": card, "points": body["points"],
                                        "balance": view.balance})

    def _device_step(self, kind: str, body: Any) -> None:
        if self.devices is None:
            from terminal.tools.device_steps import DeviceSteps  # drivers load only when used

            self.devices = DeviceSteps(self.store, lambda: (self.moment().at, self.trusted))
        output, refusals = self.devices.run(kind, body)
        self.out.setdefault("devices", []).append({"step": self.index, "kind": kind, **output})
        self.out["errors"] += [{"step": self.index, "why": why, "rule": "device"}
                               for why in refusals]

    def step_swipe(self, body: Any) -> None:
        """The text a keyboard-wedge card reader types for one swipe, Enter included."""
        self._device_step("swipe", body)

    def step_scan(self, body: Any) -> None:
        """The text a barcode scanner types, Enter included."""
        self._device_step("scan", body)

    def step_keys(self, body: Any) -> None:
        """Keypad keys by evdev name (a list, or one string separated by spaces)."""
        self._device_step("keys", body)

    def step_expire(self, body: Any) -> None:
        result = self.store.expire(self.moment())
        self.out["expiries"].append({
            "lots": result.lots, "points": result.points, "members": result.members,
            "as_of": result.as_of.isoformat() if result.as_of else None,
            "skipped": result.skipped,
        })


def replay(scenario: dict[str, Any], store: LedgerStore) -> dict[str, Any]:
    steps = scenario.get("steps")
    if not isinstance(steps, list):
        raise ScenarioError("the scenario has no 'steps' list")
    return Replay(store).run(steps)


def load_scenario(path: Path) -> tuple[dict[str, Any], Identity]:
    try:
        scenario = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(scenario, dict):
        raise ScenarioError(f"{path}: a scenario is a JSON object")
    term = scenario.get("terminal", {})
    if not isinstance(term, dict):
        raise ScenarioError(f"{path}: 'terminal' must be an object")
    return scenario, Identity(str(term.get("store", "S000")), str(term.get("terminal", "T00")))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="scenario JSON file")
    parser.add_argument("--rules", type=Path, required=True, help="rules TOML file")
    parser.add_argument("--db", type=Path, required=True, help="SQLite ledger file (created)")


def run(args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.rules)
        scenario, identity = load_scenario(args.scenario)
        store = LedgerStore.open(args.db, rules, REPLAY_CARD_KEY, identity)
        try:
            result = replay(scenario, store)
        finally:
            store.close()
    except (RulesError, ScenarioError) as exc:
        print(f"posterm replay: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0
