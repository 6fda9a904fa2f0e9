"""The append-only audit log: every action and every read of a member's personal data.

Written in the transaction of what it records (a read's row commits with nothing else). The
auditor searches it by actor, action, subject and time.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from terminal.hq.console.models import ConsoleAudit
from terminal.hq.console.roles import Principal
from terminal.hq.local_time import shown_micros
from terminal.loyalty.clock import to_micros


def now_us() -> int:
    return to_micros(datetime.now(UTC))


def record(who: Principal, action: str, subject: str = "", why: str = "",
           detail: str = "") -> None:
    """Run with the console models bound, inside the caller's transaction if it has one."""
    ConsoleAudit.insert(at_us=now_us(), actor=who.name, role=who.role, via=who.via,
                        action=action, subject=subject, why=why[:500],
                        detail=detail[:2000]).execute()


def record_system(action: str, subject: str = "", detail: str = "") -> None:
    """An action from the command line (user add, token issue/revoke), by the system account
    that ran it."""
    record(Principal(f"cli:{getpass.getuser()}", "cli", via="cli"), action, subject,
           detail=detail)


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ""
    action: str = ""
    subject: str = ""
    since_us: int | None = None
    until_us: int | None = None
    before_id: int | None = None  # paging: rows older than this id
    limit: int = 100


def search(query: AuditQuery) -> list[dict[str, Any]]:
    """Newest first. ``action`` matches as a prefix (``member.`` finds every member action)."""
    rows = ConsoleAudit.select().order_by(ConsoleAudit.id.desc()).limit(min(query.limit, 500))
    if query.actor:
        rows = rows.where(ConsoleAudit.actor == query.actor)
    if query.action:
        rows = rows.where(ConsoleAudit.action.startswith(query.action))
    if query.subject:
        rows = rows.where(ConsoleAudit.subject == query.subject)
    if query.since_us is not None:
        rows = rows.where(ConsoleAudit.at_us >= query.since_us)
    if query.until_us is not None:
        rows = rows.where(ConsoleAudit.at_us < query.until_us)
    if query.before_id is not None:
        rows = rows.where(ConsoleAudit.id < query.before_id)
    return [{"id": row.id, "at": shown_micros(row.at_us),
             "actor": row.actor, "role": row.role, "via": row.via, "action": row.action,
             "subject": row.subject, "why": row.why, "detail": row.detail} for row in rows]
