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
from terminal.hq.local_time import shown_micros
from terminal.hq.models import TerminalSeen

SAMPLES_KEPT = 20


@dataclass(frozen=True)
class Thresholds:
    offline_after: timedelta = timedelta(minutes=15)
    growing_samples: int = 3


DEFAULT_THRESHOLDS = Thresholds()
PER_PAGE = 100


@dataclass(frozen=True)
class FleetView:
    """Which terminals a list shows: one store's, only those with alerts, one page of them
    (``per_page`` 0: all)."""

    store: str = ""
    alerting: bool = False
    page: int = 0
    per_page: int = 0


ALL = FleetView()

class FleetReader:
    def __init__(self, zone: ZoneInfo, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.zone, self.thresholds = zone, thresholds

    def terminals(self, who: Principal, view: FleetView = ALL) -> dict[str, Any]:
        """The terminals ``who`` may see, as ``view`` filters and pages them, with the counts of
        the whole (visible) fleet. Four queries whatever the fleet's size (the latest command
        and the last backlog reports of every terminal each come in one); only the page's rows
        are formatted."""
        # Plain rows, not models: a fleet is hundreds of them and model instances cost.
        rows = (TerminalSeen.select().order_by(TerminalSeen.store, TerminalSeen.terminal)
                .namedtuples())
        stores = None if who.chain_wide else who.stores
        if stores is not None:
            rows = rows.where(TerminalSeen.store.in_(stores))
        newest = self._newest_rules()
        commands = {(c.store, c.terminal): c for c in _latest(
            ConsoleCommand, ConsoleCommand.sent_us, 1, stores)}
        samples: dict[tuple[str, str], list[int]] = {}
        for sample in _latest(BacklogSample, BacklogSample.at_us,
                              self.thresholds.growing_samples + 1, stores):
            samples.setdefault((sample.store, sample.terminal), []).append(sample.backlog)
        judged = [(row, self._alerts(row, newest, samples.get((row.store, row.terminal), [])[::-1]))
                  for row in rows]
        shown = [(row, alerts) for row, alerts in judged
                 if (not view.store or row.store == view.store) and (alerts or not view.alerting)]
        start = view.page * view.per_page if view.per_page else 0
        end = start + view.per_page if view.per_page else len(shown)
        return {
            "terminals": [self._row(row, newest, alerts, commands.get((row.store, row.terminal)))
                          for row, alerts in shown[start:end]],
            "total": len(judged), "online": sum(1 for row, _ in judged if row.online),
            "alerting": sum(1 for _, alerts in judged if alerts), "matching": len(shown),
            "stores": sorted({row.store for row, _ in judged}),
        }

    def terminal(self, who: Principal, store: str, terminal: str) -> dict[str, Any] | None:
        """One terminal with its command history; None: unknown, or outside ``who``'s stores."""
        if not who.sees_store(store):
            return None
        row = TerminalSeen.get_or_none((TerminalSeen.store == store)
                                       & (TerminalSeen.terminal == terminal))
        if row is None:
            return None
        history = self._samples(store, terminal, SAMPLES_KEPT)
        commands = list(ConsoleCommand.select().where(
            (ConsoleCommand.store == store) & (ConsoleCommand.terminal == terminal))
            .order_by(ConsoleCommand.sent_us.desc()).limit(20))
        newest = self._newest_rules()
        alerts = self._alerts(row, newest, [s.backlog for s in
                                            history[-(self.thresholds.growing_samples + 1):]])
        data = self._row(row, newest, alerts, commands[0] if commands else None)
        data["commands"] = [self._command(c) for c in commands]
        data["backlog_history"] = [{"at": self._local(s.at_us), "backlog": s.backlog}
                                   for s in history]
        return data

    @staticmethod
    def _newest_rules() -> int:
        return int(TerminalSeen.select(fn.COALESCE(fn.MAX(TerminalSeen.rule_version), 0))
                   .scalar())

    def _alerts(self, row: Any, newest_rules: int, backlogs: list[int]) -> list[str]:
        """``backlogs``: its last reports' backlogs, oldest first."""
        alerts = []
        if not row.online and audit.now_us() - row.last_seen_us \
                > self.thresholds.offline_after.total_seconds() * 1_000_000:
            alerts.append("offline")
        if row.rule_version < newest_rules:
            alerts.append("stale_rules")
        if len(backlogs) > self.thresholds.growing_samples \
                and all(a < b for a, b in pairwise(backlogs)):
            alerts.append("backlog_growing")
        return alerts

    def _row(self, row: Any, newest_rules: int, alerts: list[str],
             last: ConsoleCommand | None) -> dict[str, Any]:
        devices = json.loads(row.devices or "{}")
        return {
            "store": row.store, "terminal": row.terminal, "online": row.online,
            "epoch": row.epoch, "version": row.version, "rule_version": row.rule_version,
            "newest_rules": newest_rules, "backlog": row.backlog, "devices": devices,
            "printer": devices.get("printer", "?"),
            "printer_state": _printer_state(row.printer_state),
            "last_seen": self._local(row.last_seen_us),
            "rejected": json.loads(row.rejected) if row.rejected else None,
            "bundles": json.loads(row.bundles or "{}"),
            "alerts": alerts, "last_command": self._command(last) if last else None,
        }

    def _samples(self, store: str, terminal: str, count: int) -> list[BacklogSample]:
        rows = list(BacklogSample.select().where((BacklogSample.store == store)
                                                 & (BacklogSample.terminal == terminal))
                    .order_by(BacklogSample.at_us.desc()).limit(count))
        return rows[::-1]

    def _command(self, row: ConsoleCommand) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "actor": row.actor,
                "sent": self._local(row.sent_us), "state": row.state, "detail": row.detail,
                "answered": self._local(row.answered_us) if row.answered_us else None}

    def _local(self, us: int) -> str:
        return shown_micros(us, self.zone)


def _printer_state(stored: str | None) -> dict[str, Any] | None:
    """``terminal_seen.printer_state`` as the status carried it, ``{"code", "waiting"}``; None for
    a till that sent none (or a value that is not such an object)."""
    try:
        state = json.loads(stored) if stored else None
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _latest(model: Any, time_field: Any, count: int,
            stores: tuple[str, ...] | None) -> list[Any]:
    """The newest ``count`` rows of ``model`` per terminal, newest first within each: one
    query (ROW_NUMBER over each terminal's rows; SQLite has it since 3.25)."""
    rank = fn.ROW_NUMBER().over(partition_by=[model.store, model.terminal],
                                order_by=[time_field.desc()])
    inner = model.select(model, rank.alias("rank"))
    if stores is not None:
        inner = inner.where(model.store.in_(stores))
    ranked = inner.alias("ranked")
    query = (model.select(*[getattr(ranked.c, f.column_name) for f in model._meta.sorted_fields])
             .from_(ranked).where(ranked.c.rank <= count)
             .order_by(ranked.c.store, ranked.c.terminal, getattr(ranked.c,
                                                                  time_field.column_name).desc()))
    return list(query)


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
