"""Where a release stands on the tills: which terminals applied it, which refused it and why,
which have not answered yet; and the history of every release.

Terminals report the version they hold per scope in each status (``bundles``, kept in
``terminal_seen`` by the collectors) and every refusal (``bundle_refusal``). A refusal names the
topic, not the version: it is this release's when it was received after the release was pushed
and the terminal does not hold the version (a retained topic carries only the newest bundle).
Run with the models bound (the console's database thread, or the command line's binding).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from terminal.hq.local_time import shown_micros, shown_time
from terminal.hq.models import BundleRefusal, TerminalSeen
from terminal.hq.rules_studio.models import BundleRelease
from terminal.hq.rules_studio.releases import held_versions

APPLIED, NEWER, REFUSED, PENDING = "applied", "newer", "refused", "pending"


def _reaches(scope: str, store: str) -> bool:
    return scope == "chain" or scope == f"store/{store}"


def terminals(row: BundleRelease, stores: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """One line per (terminal, scope of the release that reaches it), by store and terminal;
    ``stores`` limits them (a store manager's)."""
    scopes = json.loads(row.scopes)
    since = row.pushed_us or row.created_us
    refusals: dict[tuple[str, str, str], Any] = {}
    for refusal in (BundleRefusal.select().where((BundleRefusal.received_us >= since)
                                                 & BundleRefusal.scope.in_(scopes))
                    .order_by(BundleRefusal.received_us)):
        refusals[(refusal.store, refusal.terminal, refusal.scope)] = refusal
    seen = TerminalSeen.select().order_by(TerminalSeen.store, TerminalSeen.terminal)
    if stores is not None:
        seen = seen.where(TerminalSeen.store.in_(stores))
    out = []
    for term in seen:
        held = held_versions(term)
        for scope in (s for s in scopes if _reaches(s, term.store)):
            version = held.get(scope, 0)
            refusal = refusals.get((term.store, term.terminal, scope))
            state = (APPLIED if version == row.version else NEWER if version > row.version
                     else REFUSED if refusal is not None else PENDING)
            out.append({"store": term.store, "terminal": term.terminal, "scope": scope,
                        "state": state, "held": version, "online": term.online,
                        "reason": refusal.reason if state == REFUSED else "",
                        "detail": refusal.detail if state == REFUSED else ""})
    return out


def counts(lines: list[dict[str, Any]]) -> dict[str, int]:
    found = {APPLIED: 0, NEWER: 0, REFUSED: 0, PENDING: 0}
    for line in lines:
        found[line["state"]] += 1
    return found


def describe(row: BundleRelease, zone: Any = None) -> dict[str, Any]:
    """A release as the history shows it (without its terminals)."""
    def when(us: int | None) -> str:
        return shown_micros(us, zone) if us else ""
    return {"version": row.version, "kind": row.kind, "scopes": json.loads(row.scopes),
            "author": row.author, "created": when(row.created_us), "approver": row.approver,
            "approved": when(row.approved_us), "source_version": row.source_version,
            "state": row.state, "detail": row.detail, "pushed": when(row.pushed_us),
            "content_sha": row.content_sha, "expires_at": row.expires_at,
            "expires": _local(row.expires_at, zone),
            "backtest": json.loads(row.backtest) if row.backtest else None}


def _local(iso: str, zone: Any) -> str:
    """A stored ISO time (a bundle's expiry) as the chain's local time, as the other times are
    shown; as stored when it does not parse."""
    try:
        at = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    return shown_time(at, zone)


def history(zone: Any = None, stores: tuple[str, ...] | None = None,
            limit: int = 200) -> list[dict[str, Any]]:
    """Every release, newest first, each with how many terminals hold it, refused it or have
    not answered."""
    out = []
    for row in BundleRelease.select().order_by(BundleRelease.version.desc()).limit(limit):
        data = describe(row, zone)
        lines = terminals(row, stores)
        data["counts"] = counts(lines)
        data["holding"] = sorted({f"{line['store']}/{line['terminal']}" for line in lines
                                  if line["state"] == APPLIED})
        out.append(data)
    return out


def latest() -> BundleRelease | None:
    return BundleRelease.select().order_by(BundleRelease.version.desc()).first()
