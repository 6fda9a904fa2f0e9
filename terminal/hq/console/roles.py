"""Roles and what each may do: one table, read by every page and API route.

``store_manager`` is further scoped to its named stores (:meth:`Principal.sees_store`); the
others see the whole chain. ``it`` runs the fleet: its terminals, their commands, and the
enrollment codes new ones are provisioned with. ``auditor`` reads everything, the audit log
included, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.protocol.topics import check_id

ROLES = ("admin", "marketing", "service", "finance", "auditor", "store_manager", "it")

_ALL = frozenset(ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "members.read": _ALL,
    "members.export": frozenset({"admin", "service", "finance", "auditor", "store_manager"}),
    "members.operate": frozenset({"admin", "service"}),
    "members.move": frozenset({"admin", "service"}),  # change a member's home store
    "fleet.read": frozenset({"admin", "service", "auditor", "store_manager", "it"}),
    "fleet.command": frozenset({"admin", "store_manager", "it"}),
    # one-visit enrollment codes for new terminals, and cutting a terminal off (issue 14)
    "terminals.enroll": frozenset({"admin", "it"}),
    "audit.read": frozenset({"admin", "auditor"}),
    "rules.author": frozenset({"admin", "marketing"}),  # the rules studio (issue 17)
    # The dashboard and the points reports (issue 13); a store manager reads its stores'.
    "reports.read": frozenset({"admin", "marketing", "finance", "auditor", "store_manager"}),
    # The lists to act on name members: read and exported by those who follow them up.
    "lists.read": frozenset({"admin", "marketing", "service", "auditor", "store_manager"}),
    "rules.approve": frozenset({"admin"}),  # a chain push, a rollback, the studio's policy
    # Member care (issue 13): campaigns name members chain-wide, so no store manager.
    "care.read": frozenset({"admin", "marketing", "service", "auditor"}),
    "care.manage": frozenset({"admin", "marketing"}),  # create and send campaigns
    "care.consent": frozenset({"admin", "service"}),  # record a member's opt-in or opt-out
}


class Forbidden(Exception):
    """The principal's role does not allow the action."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user (web) or a token's owner (api)."""

    name: str
    role: str
    stores: tuple[str, ...] = ()
    via: str = "web"

    @property
    def chain_wide(self) -> bool:
        return self.role != "store_manager"

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise Forbidden(f"{self.role} may not {permission}")

    def sees_store(self, store: str | None) -> bool:
        return self.chain_wide or (store is not None and store in self.stores)


def parse_stores(text: str) -> tuple[str, ...]:
    """``S001,S002`` -> ``("S001", "S002")``: ids checked as the topic scheme allows them
    (a bad one raises ``TopicError``, a ``ValueError``)."""
    stores = tuple(check_id(part.strip(), "store") for part in text.split(",") if part.strip())
    if len(set(stores)) != len(stores):
        raise ValueError(f"a store is named twice in {text!r}")
    return stores
