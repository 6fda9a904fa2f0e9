"""Stage, approve, roll back: the rules studio's bundle releases (issue 17).

A release is one content (the rules as written, the catalogue, the settings) signed with the
signing key HQ holds (never the root key: :func:`check_signer`) and pushed, retained, to one or
more scopes under one version. The lifecycle:

- **stage** (``rules.author``: marketing): to one store first (``store/S001``);
- **approve** (``rules.approve``: admin): the staged content to the whole chain as a new
  release, to ``chain`` and to every store scope a release ever reached (a store's bundle
  outranks the chain's on its tills, so those stores must follow the chain from now on). With
  the ``two_person`` policy the approver must not be the staged release's author;
- **rollback** (``rules.approve``): an earlier release's content again as a new, higher version
  (tills refuse a version at or below the one they hold), to the same scopes a chain push
  reaches (or to the store a staged release went to).

Versions are one sequence across scopes, above every release and every version a terminal
reports holding, so a version names one release. Every function here runs with the models
bound, inside the caller's transaction (the console's database thread, :class:`ConsoleDb`);
every action is audited in that transaction. Publishing is the caller's (it needs the broker):
:func:`mark_pushed`/:func:`mark_failed` record the outcome.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from peewee import fn

from terminal.hq.bundles import BuildError, toml_mapping
from terminal.hq.console import audit
from terminal.hq.console.roles import Principal
from terminal.hq.member_ops.publish import Signer
from terminal.hq.models import TerminalSeen
from terminal.hq.rules_studio.models import BundleRelease, StudioPolicy
from terminal.hq.rules_studio.validate import validate
from terminal.loyalty.clock import to_micros
from terminal.protocol import bundle, canonical
from terminal.protocol.topics import TopicError, check_id

DEFAULT_LIFETIME = timedelta(days=60)
STAGE, CHAIN, ROLLBACK, PUSH = "stage", "chain", "rollback", "push"


class ReleaseError(ValueError):
    """A refused step; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Content:
    """What a release carries: the rules as written, the catalogue, the settings."""

    rules_text: str
    catalogue: list[Any]
    settings: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The bundle's payload, the rules checked by the engine first (line and key named)."""
        checked = validate(self.rules_text)
        if not checked.ok:
            raise ReleaseError(f"the rules are refused: {checked.problems[0]}")
        try:
            rules = toml_mapping(self.rules_text, "rules")
        except BuildError as exc:
            raise ReleaseError(str(exc)) from None
        return {"rules": rules, "catalogue": self.catalogue, "settings": self.settings}


def check_signer(signer: Signer) -> None:
    """Refuse a root key offered as the signing key: bundles are signed by a delegated key."""
    try:
        statement = canonical.loads(base64.b64decode(signer.delegation["statement"],
                                                     validate=True))
    except (KeyError, TypeError, ValueError, canonical.CanonicalError) as exc:
        raise ReleaseError(f"the delegation is unreadable: {exc}") from None
    own = bundle.key_id(signer.key.public_key())
    if not isinstance(statement, dict) or statement.get("key_id") != own:
        raise ReleaseError(f"the delegation does not vouch for the signing key {own}")
    if statement.get("root_key_id") == own:
        raise ReleaseError("the signing key is the root key: sign with a delegated key "
                           "(posterm-hq keygen), keep the root key offline")


# ------------------------------------------------------------------ reading


def policy_two_person() -> bool:
    row = StudioPolicy.get_or_none(StudioPolicy.name == "two_person")
    return row is not None and row.value == "on"


def set_two_person(who: Principal, on: bool) -> None:
    who.require("rules.approve")
    value = "on" if on else "off"
    StudioPolicy.insert(name="two_person", value=value).on_conflict(
        conflict_target=[StudioPolicy.name], update={StudioPolicy.value: value}).execute()
    audit.record(who, "rules.policy", "two_person", detail=value)


def held_versions(row: Any) -> dict[str, int]:
    """A ``terminal_seen`` row's versions held per scope."""
    try:
        data = json.loads(row.bundles or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) \
        else {}


def next_version() -> int:
    """Above every release and every version a terminal reports holding or running."""
    top = int(BundleRelease.select(fn.COALESCE(fn.MAX(BundleRelease.version), 0)).scalar())
    for row in TerminalSeen.select(TerminalSeen.rule_version, TerminalSeen.bundles):
        top = max(top, row.rule_version, *held_versions(row).values())
    return top + 1


def get(version: int) -> BundleRelease:
    row = BundleRelease.get_or_none(BundleRelease.version == version)
    if row is None:
        raise ReleaseError(f"no release v{version}")
    return row


def in_force_text(default: str) -> str:
    """The rules text of the newest release pushed to the chain; ``default`` before any."""
    for row in (BundleRelease.select().where(BundleRelease.state == "pushed")
                .order_by(BundleRelease.version.desc())):
        if "chain" in json.loads(row.scopes):
            return row.rules_text
    return default


def carried(catalogue: list[Any] | None, settings: dict[str, Any] | None,
            rules_text: str) -> Content:
    """A new release's content: ``rules_text`` with the catalogue and settings given, or
    where one is None, the newest pushed release's (an empty one before any: a till loads the
    catalogue a bundle carries, so leaving it out would empty the tills' catalogues)."""
    newest = (BundleRelease.select().where(BundleRelease.state == "pushed")
              .order_by(BundleRelease.version.desc()).first())
    before = _content(newest) if newest is not None else Content("", [], {})
    return Content(rules_text, before.catalogue if catalogue is None else catalogue,
                   before.settings if settings is None else settings)


def _store_scopes() -> list[str]:
    scopes: set[str] = set()
    for row in BundleRelease.select(BundleRelease.scopes).where(BundleRelease.state == "pushed"):
        scopes.update(s for s in json.loads(row.scopes) if s.startswith("store/"))
    return sorted(scopes)


# ------------------------------------------------------------------ steps


def _create(who: Principal, kind: str, scopes: list[str], content: Content, signer: Signer,
            *, author: str, backtest: dict[str, Any] | None = None,
            source: int | None = None, approver: str = "",
            lifetime: timedelta = DEFAULT_LIFETIME) -> BundleRelease:
    check_signer(signer)
    payload = content.payload()
    version = next_version()
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + min(lifetime, bundle.MAX_LIFETIME)
    key_id = bundle.key_id(signer.key.public_key())
    wires = {}
    for scope in scopes:
        try:
            raw = bundle.bundle_bytes(scope, version, now, expires, key_id, payload)
        except (ValueError, canonical.CanonicalError) as exc:
            raise ReleaseError(f"the bundle for {scope}: {exc}") from None
        wires[scope] = bundle.envelope(raw, bundle.sign(raw, signer.key),
                                       signer.delegation).decode("utf-8")
    encoded = canonical.dumps(payload)
    row = BundleRelease.create(
        version=version, kind=kind, scopes=json.dumps(scopes), rules_text=content.rules_text,
        payload=encoded.decode("utf-8"), content_sha=hashlib.sha256(encoded).hexdigest(),
        author=author, created_us=to_micros(now), approver=approver,
        approved_us=to_micros(now) if approver else None, source_version=source,
        backtest=json.dumps(backtest, ensure_ascii=False) if backtest else "", state="signed",
        issued_at=now.isoformat(), expires_at=expires.isoformat(), wires=json.dumps(wires))
    audit.record(who, f"rules.{kind}", f"v{version}", detail=f"{' '.join(scopes)} sha256 "
                 f"{row.content_sha[:16]}" + (f" from v{source}" if source else ""))
    return row


def stage(who: Principal, content: Content, store: str, signer: Signer, *,
          backtest: dict[str, Any] | None = None,
          lifetime: timedelta = DEFAULT_LIFETIME) -> BundleRelease:
    """A release of ``content`` to one store (``rules.author``)."""
    who.require("rules.author")
    try:
        store = check_id(store, "store")
    except TopicError as exc:
        raise ReleaseError(str(exc)) from None
    return _create(who, STAGE, [f"store/{store}"], content, signer, author=who.name,
                   backtest=backtest, lifetime=lifetime)


def _content(row: BundleRelease) -> Content:
    payload = canonical.loads(row.payload.encode("utf-8"))
    return Content(row.rules_text, payload["catalogue"], payload["settings"])


def approve(who: Principal, version: int, signer: Signer, *,
            lifetime: timedelta = DEFAULT_LIFETIME) -> BundleRelease:
    """The staged release ``version`` pushed to the whole chain (``rules.approve``)."""
    who.require("rules.approve")
    staged = get(version)
    if staged.kind != STAGE or staged.state != "pushed":
        raise ReleaseError(f"v{version} is not a staged release that was pushed "
                           f"({staged.kind}, {staged.state})")
    done = BundleRelease.get_or_none((BundleRelease.source_version == version)
                                     & (BundleRelease.kind == CHAIN))
    if done is not None:
        raise ReleaseError(f"v{version} was approved already: chain release v{done.version}")
    if policy_two_person() and who.name == staged.author:
        raise ReleaseError(f"a second person must approve: {who.name} authored v{version}")
    return _create(who, CHAIN, ["chain", *_store_scopes()], _content(staged), signer,
                   author=staged.author, backtest=_backtest(staged), source=version,
                   approver=who.name, lifetime=lifetime)


def rollback(who: Principal, version: int, signer: Signer, *,
             lifetime: timedelta = DEFAULT_LIFETIME) -> BundleRelease:
    """Release ``version``'s content again as a new version (``rules.approve``)."""
    who.require("rules.approve")
    earlier = get(version)
    if earlier.state != "pushed":
        raise ReleaseError(f"v{version} was never pushed ({earlier.state})")
    scopes = json.loads(earlier.scopes)
    if "chain" in scopes:
        scopes = ["chain", *_store_scopes()]
    return _create(who, ROLLBACK, scopes, _content(earlier), signer, author=who.name,
                   backtest=_backtest(earlier), source=version, approver=who.name,
                   lifetime=lifetime)


def record(who: Principal, built: bundle.Bundle, message: bytes,
           rules_text: str) -> BundleRelease:
    """A bundle built and signed by ``posterm-hq bundle build`` (``built``, as verified
    against ``root.pub``; ``message``, its wire form), recorded before ``bundle push`` publishes
    it, as the studio records its own: who pushed it, its content, its version in the one
    sequence. To a store ``rules.author`` may push it; to the chain only ``rules.approve``, who
    is its approver too, and not at all under the two-person policy (one person would author
    and approve it: stage it and have another admin approve). Its version must be above every
    release and every version a terminal holds, as the studio's (:func:`next_version`)."""
    chain = built.scope == "chain"
    who.require("rules.approve" if chain else "rules.author")
    if chain and policy_two_person():
        raise ReleaseError("a second person must approve chain pushes: stage the rules "
                           "(posterm-hq rules stage) and have another admin approve them")
    lowest = next_version()
    if built.version < lowest:
        raise ReleaseError(f"v{built.version} is not above every release and every version a "
                           f"terminal holds: build it again with --version {lowest} or more")
    checked = validate(rules_text)
    if not checked.ok:
        raise ReleaseError(f"the rules are refused: {checked.problems[0]}")
    try:
        written = toml_mapping(rules_text, "rules")
    except BuildError as exc:
        raise ReleaseError(str(exc)) from None
    if canonical.dumps(written) != canonical.dumps(built.payload.get("rules")):
        raise ReleaseError("the rules as written are not the rules the bundle carries")
    encoded = canonical.dumps(built.payload)
    now_us = audit.now_us()
    row = BundleRelease.create(
        version=built.version, kind=PUSH, scopes=json.dumps([built.scope]),
        rules_text=rules_text, payload=encoded.decode("utf-8"),
        content_sha=hashlib.sha256(encoded).hexdigest(), author=who.name, created_us=now_us,
        approver=who.name if chain else "", approved_us=now_us if chain else None,
        state="signed", issued_at=built.issued_at.isoformat(),
        expires_at=built.expires_at.isoformat(),
        wires=json.dumps({built.scope: message.decode("utf-8")}))
    audit.record(who, f"rules.{PUSH}", f"v{built.version}",
                 detail=f"{built.scope} sha256 {row.content_sha[:16]} key {built.key_id}")
    return row


def _backtest(row: BundleRelease) -> dict[str, Any] | None:
    return json.loads(row.backtest) if row.backtest else None


def messages(row: BundleRelease) -> list[tuple[str, bytes]]:
    """(scope, signed message) of each scope, broadest first."""
    return [(scope, wire.encode("utf-8")) for scope, wire in json.loads(row.wires).items()]


def mark_pushed(version: int, sent_us: int | None = None) -> None:
    """``sent_us``: when the publish began. A terminal can refuse the bundle, and HQ record the
    refusal, before the publish returns; the rollout counts refusals from this time on."""
    BundleRelease.update(state="pushed", pushed_us=sent_us).where(
        BundleRelease.version == version).execute()


def mark_failed(version: int, detail: str) -> None:
    BundleRelease.update(state="failed", detail=detail[:500]).where(
        BundleRelease.version == version).execute()


def backtest_summary(result: dict[str, Any], days: int) -> dict[str, Any]:
    """What a release keeps of the backtest staged with it."""
    keep = ("points_issued", "points_redeemed", "points_expired", "liability_end",
            "liability_end_yuan")
    return {"days": days, "window": result["window"],
            "in_force": {k: result["in_force"][k] for k in keep},
            "candidate": {k: result["candidate"][k] for k in keep},
            "liability_change_yuan": result["liability_change_yuan"],
            "tier_changes": result["tier_changes"], "check": result["check"]["matches"]}
