"""``posterm replay`` device steps: ``swipe``, ``scan`` and ``keys`` through the real decoding.

The step's text or key names become evdev events (``terminal.drivers.keys``), are injected into
simulated input ports exactly as a device would deliver them, and reach the till the daemon runs,
with the simulated printer and the pseudo-terminal pole display. After each step the pole's two
lines are read back through its decoder, and every receipt printed is given as text.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

from terminal.app.hqlink import Standalone
from terminal.app.ledger import Clock, LedgerGateway
from terminal.daemon.bootstrap import Terminal, assemble
from terminal.daemon.config import parse_config
from terminal.drivers.keys import events_for_keys, events_for_text
from terminal.loyalty.errors import InvalidInput
from terminal.loyalty.store import LedgerStore
from terminal.loyalty.store.ledger_thread import LedgerThread
from terminal.loyalty.store.operators import SignedIn, new_pin_key

ROLES = {"swipe": "msr", "scan": "scanner", "keys": "keypad"}
# Replays act as a manager, as their business steps do, so no step stops for a PIN.
REPLAY_OPERATOR = SignedIn("replay", "manager")


def _config(store: LedgerStore, state_dir: str) -> Any:
    identity = store.identity
    return parse_config({
        "terminal": {"store": identity.store, "terminal_id": identity.terminal},
        "paths": {"state_dir": state_dir},
        "loyalty": {"departments": ["", ""]},
        "input": {name: {"backend": "simulated", "role": role}
                  for name, role in (("reader", "msr"), ("scanner", "scanner"),
                                     ("keypad", "keypad"))},
        "printer": {"backend": "dummy"},
        "pole": {"backend": "pty"},
    }, "replay")


class DeviceSteps:
    def __init__(self, store: LedgerStore, clock: Clock) -> None:
        self._state = tempfile.TemporaryDirectory(prefix="posterm-replay-")
        self._runner = asyncio.Runner()
        self.terminal: Terminal = self._runner.run(self._start(store, clock))

    async def _start(self, store: LedgerStore, clock: Clock) -> Terminal:
        # Replays sign no one in (REPLAY_OPERATOR): a throwaway PIN key.
        ledger = LedgerGateway(store, clock, new_pin_key(), LedgerThread(store.db))
        return await assemble(_config(store, self._state.name), store.rules, ledger,
                              Standalone(), REPLAY_OPERATOR)

    def run(self, kind: str, body: Any) -> tuple[dict[str, Any], list[str]]:
        """Play one step; returns its output and the refusals the till showed."""
        events = self._events(kind, body)
        return self._runner.run(self._play(ROLES[kind], events))

    @staticmethod
    def _events(kind: str, body: Any) -> list[Any]:
        try:
            if kind == "keys":
                names = body.split() if isinstance(body, str) else body
                if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                    raise InvalidInput("keys: a list of evdev key names", "keys")
                return events_for_keys(names)
            if not isinstance(body, str):
                raise InvalidInput(f"{kind}: the text the device types", kind)
            return events_for_text(body)
        except ValueError as exc:  # a key name or character the device cannot produce
            raise InvalidInput(f"{kind}: {exc}", kind) from None

    async def _play(self, role: str, events: list[Any]) -> tuple[dict[str, Any], list[str]]:
        terminal = self.terminal
        till = terminal.till
        printed_before = len(terminal.desk.printed)
        refusals_before = till.refusal_count
        port = terminal.port(role)
        port.inject(events)
        port.expire(float("inf"))  # a read with no Enter completes as the idle timer would
        await terminal.inputs.drain()
        await till.settle()
        pole = terminal.pole
        lines = pole.simulator.lines if pole is not None and pole.simulator else ("", "")
        output = {
            "display": list(lines),
            "receipts": [p.text for p in terminal.desk.printed[printed_before:]],
        }
        new = till.refusal_count - refusals_before
        return output, list(till.refusals)[-new:] if new else []

    def close(self) -> None:
        try:
            self._runner.run(self.terminal.close())
        finally:
            self._runner.close()
            self._state.cleanup()
