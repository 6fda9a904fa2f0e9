"""The fleet as the console shows it: every terminal's last status (``terminal_seen``, kept by
the collectors), its alerts, and the commands sent to it.

Alerts, each a code the page translates:

- ``offline``: the terminal said offline (or its will did) longer ago than ``offline_after``;
- ``stale_rules``: it runs a rule version below the newest any terminal of the chain runs (the
  bundle a store's terminals should all have reached);
- ``backlog_growing``: its backlog rose in each of its last ``growing_samples`` reports (the
  console asks every online terminal for a report every ``--health-interval``).

Run every function here on the console's database thread (:class:`ConsoleDb`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from peewee import fn

from terminal.hq.console import audit
from terminal.hq.console.models import BacklogSample, ConsoleCommand
from terminal.hq.console.roles import Principal
from terminal.hq.models import TerminalSeen
from terminal.loyalty.clock import from_micros

SAMPLES_KEPT = 20


@dataclass(frozen=True)
class Thresholds:
    offline_after: timedelta = timedelta(minutes=15)
    growing_samples: int = 3


DEFAULT_THRESHOLDS = Thresholds()

class FleetReader:
    def __init__(self, zone: ZoneInfo, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.zone, self.thresholds = zone, thresholds

    def terminals(self, who: Principal) -> list[dict[str, Any]]:
        rows = TerminalSeen.select().order_by(TerminalSeen.store, TerminalSeen.terminal)
        if not who.chain_wide:
            rows = rows.where(TerminalSeen.store.in_(who.stores))
        newest = self._newest_rules()
        return [self._row(row, newest) for row in rows]

    def terminal(self, who: Principal, store: str, terminal: str) -> dict[str, Any] | None:
        """One terminal with its command history; None: unknown, or outside ``who``'s stores."""
        if not who.sees_store(store):
            return None
        row = TerminalSeen.get_or_none((TerminalSeen.store == store)
                                       & (TerminalSeen.terminal == terminal))
        if row is None:
            return None
        data = self._row(row, self._newest_rules())
        data["commands"] = [self._command(c) for c in ConsoleCommand.select().where(
            (ConsoleCommand.store == store) & (ConsoleCommand.terminal == terminal))
            .order_by(ConsoleCommand.sent_us.desc()).limit(20)]
        data["backlog_history"] = [
            {"at": self._local(s.at_us), "backlog": s.backlog}
            for s in self._samples(store, terminal, SAMPLES_KEPT)]
        return data

    @staticmethod
    def _newest_rules() -> int:
        return int(TerminalSeen.select(fn.COALESCE(fn.MAX(TerminalSeen.rule_version), 0))
                   .scalar())

    def _row(self, row: TerminalSeen, newest_rules: int) -> dict[str, Any]:
        devices = json.loads(row.devices or "{}")
        alerts = []
        if not row.online and audit.now_us() - row.last_seen_us \
                > self.thresholds.offline_after.total_seconds() * 1_000_000:
            alerts.append("offline")
        if row.rule_version < newest_rules:
            alerts.append("stale_rules")
        if self._growing(row.store, row.terminal):
            alerts.append("backlog_growing")
        last = (ConsoleCommand.select().where((ConsoleCommand.store == row.store)
                                              & (ConsoleCommand.terminal == row.terminal))
                .order_by(ConsoleCommand.sent_us.desc()).first())
        return {
            "store": row.store, "terminal": row.terminal, "online": row.online,
            "epoch": row.epoch, "version": row.version, "rule_version": row.rule_version,
            "newest_rules": newest_rules, "backlog": row.backlog, "devices": devices,
            "printer": devices.get("printer", "?"), "last_seen": self._local(row.last_seen_us),
            "rejected": json.loads(row.rejected) if row.rejected else None,
            "alerts": alerts, "last_command": self._command(last) if last else None,
        }

    def _samples(self, store: str, terminal: str, count: int) -> list[BacklogSample]:
        rows = list(BacklogSample.select().where((BacklogSample.store == store)
                                                 & (BacklogSample.terminal == terminal))
                    .order_by(BacklogSample.at_us.desc()).limit(count))
        return rows[::-1]

    def _growing(self, store: str, terminal: str) -> bool:
        samples = self._samples(store, terminal, self.thresholds.growing_samples + 1)
        if len(samples) <= self.thresholds.growing_samples:
            return False
        values = [s.backlog for s in samples]
        return all(a < b for a, b in pairwise(values))

    def _command(self, row: ConsoleCommand) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "actor": row.actor,
                "sent": self._local(row.sent_us), "state": row.state, "detail": row.detail,
                "answered": self._local(row.answered_us) if row.answered_us else None}

    def _local(self, us: int) -> str:
        return from_micros(us).astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")


def record_sample(store: str, terminal: str, at_us: int, backlog: int) -> None:
    """Keep a reported backlog (the last ``SAMPLES_KEPT`` per terminal)."""
    BacklogSample.insert(store=store, terminal=terminal, at_us=at_us, backlog=backlog).execute()
    old = [s.id for s in BacklogSample.select(BacklogSample.id).where(
        (BacklogSample.store == store) & (BacklogSample.terminal == terminal))
        .order_by(BacklogSample.at_us.desc()).offset(SAMPLES_KEPT)]
    if old:
        BacklogSample.delete().where(BacklogSample.id.in_(old)).execute()


def record_answer(ref: str, state: str, detail: str, at_us: int) -> bool:
    """A terminal's answer to a command the console sent (done or refused); False if the id is
    not one of ours or was answered already."""
    return ConsoleCommand.update(state=state, detail=detail[:500], answered_us=at_us).where(
        (ConsoleCommand.id == ref) & (ConsoleCommand.state == "sent")).execute() > 0
