"""HQ's trust policy: what HQ lets a till do on its word (``posterm-hq collect --trust FILE``).

A till's events and requests are claims; this file is what HQ holds them against. It is HQ's
own, authored at HQ, never taken from a till::

    # Operators and their roles, per store. A till's adjustment names the manager who approved
    # it; HQ applies it only if that name is a manager of the till's store here.
    [operators.S001]
    "王芳" = "manager"
    "ann" = "cashier"

    [adjust]
    max_points = 5000               # one adjustment, either way
    max_per_member_per_day = 10000  # a member's till adjustments in an HQ day, either way, summed
    [adjust.cross_store]            # stores whose managers may adjust another store's members
    S001 = ["S002"]                 # or ["*"] for every store

    [holds]
    max_per_till = 20               # pending holds one till may have at once
    max_per_member = 5              # pending holds on one member, chain-wide
    max_points_per_till = 200000    # points one till may hold at once
    max_per_till_member_per_hour = 6  # holds one till may ask on one member in an hour

    [limits]
    requests_per_second = 5         # member requests one till may make (a burst of twice that)
    events_per_second = 1000        # events one till may publish (a burst of ten times that)
    queue = 20000                   # events waiting to be applied, all tills together

Why a register at HQ rather than one the tills send: the tills' register is what a hostile till
controls, and a manager "credential" a till passes on is one the till could replay. HQ's own
register, bounds per adjustment and per member and day, and store scope cap what any till can do
however it lies. Every key is optional; a missing ``[operators]`` means no till adjustment is
applied (HQ's own, from ``posterm-hq member adjust``, do not pass through here).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("cashier", "manager")


class PolicyError(ValueError):
    """The trust policy file is malformed; the message names the file and key."""


@dataclass(frozen=True)
class AdjustRules:
    max_points: int = 5_000
    max_per_member_per_day: int = 10_000
    cross_store: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def may_cross(self, store: str, home: str) -> bool:
        granted = self.cross_store.get(store, frozenset())
        return home == store or "*" in granted or home in granted


@dataclass(frozen=True)
class HoldRules:
    max_per_till: int = 20
    max_per_member: int = 5
    max_points_per_till: int = 200_000
    # Renewing a hold on one member for ever (squatting their points) stops here; a till that
    # rings a member's sale asks once or twice (a cleared redemption, a retry).
    max_per_till_member_per_hour: int = 6
    # Settled holds (posted, voided) are deleted this many days after they settled
    # (ChainLedger.prune_holds): a sale that names a hold pruned is taken as one without a hold
    # (the offline allowance), so this is longer than any till stays offline with a sale.
    keep_days: int = 35


@dataclass(frozen=True)
class Limits:
    requests_per_second: float = 5.0
    events_per_second: float = 1000.0
    queue: int = 20_000


@dataclass(frozen=True)
class TrustPolicy:
    # store -> operator name -> role
    operators: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    adjust: AdjustRules = AdjustRules()
    holds: HoldRules = HoldRules()
    limits: Limits = Limits()

    def is_manager(self, store: str, name: str) -> bool:
        return self.operators.get(store, {}).get(name) == "manager"

    @classmethod
    def load(cls, path: Path) -> TrustPolicy:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: {exc}") from None
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "trust policy") -> TrustPolicy:
        _known(data, ("operators", "adjust", "holds", "limits"), where)
        operators: dict[str, dict[str, str]] = {}
        for store, names in _table(data, "operators", where).items():
            operators[store] = {}
            for name, role in _table({"x": names}, "x", f"{where}: [operators.{store}]").items():
                if role not in ROLES:
                    raise PolicyError(f"{where}: [operators.{store}] {name!r} = {role!r}: the "
                                      f"role is one of {', '.join(ROLES)}")
                operators[store][name] = role
        adjust = _table(data, "adjust", where)
        crossing = {}
        for store, homes in _table(adjust, "cross_store", f"{where}: [adjust]").items():
            if not isinstance(homes, list) or not all(isinstance(h, str) for h in homes):
                raise PolicyError(f"{where}: [adjust.cross_store] {store} must be a list of "
                                  f"store codes")
            crossing[store] = frozenset(homes)
        return cls(
            operators=operators,
            adjust=AdjustRules(**_numbers(adjust, AdjustRules, f"{where}: [adjust]",
                                          ("cross_store",)), cross_store=crossing),
            holds=HoldRules(**_numbers(_table(data, "holds", where), HoldRules,
                                       f"{where}: [holds]")),
            limits=Limits(**_numbers(_table(data, "limits", where), Limits,
                                     f"{where}: [limits]")),
        )


def _known(data: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise PolicyError(f"{where}: {unknown[0]!r} is not a known key ({', '.join(keys)})")


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {key} must be a table")
    return value


def _numbers(table: Mapping[str, Any], kind: type, where: str,
             others: tuple[str, ...] = ()) -> dict[str, Any]:
    """The table's numbers for ``kind``'s fields: each positive, of the field's type."""
    defaults = kind()
    names = tuple(n for n in vars(defaults) if n not in others)
    _known(table, (*names, *others), where)
    out = {}
    for name in names:
        if name not in table:
            continue
        value, want = table[name], type(getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or (want is int and not isinstance(value, int)) or value <= 0:
            raise PolicyError(f"{where}: {name} = {value!r} must be a positive "
                              f"{'whole number' if want is int else 'number'}")
        out[name] = want(value)
    return out
