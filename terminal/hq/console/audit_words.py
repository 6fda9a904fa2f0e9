"""An audit row's details in the page's language, read from the row as it was written.

``console_audit`` is append-only, and each writer words its own ``detail`` (``before 120``,
``op 7: {'points': 50}``, ``members 3, pending 2, skipped 1``); a page shows those words to an
auditor in zh-CN or English instead, each action's by one reader of the table :data:`READERS`
(the action, the pattern its writer's detail takes, what to say). The row itself is never
changed: a detail no reader recognises (an older row, another writer's) is shown as stored,
and every value taken from a row (a name typed at sign-in, a search) is made safe by
:func:`terminal.hq.shown_text.shown`; the page's template escapes HTML.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from terminal.hq.shown_text import shown

Said = Callable[[Any, "re.Match[str]"], str]  # (translator, the detail's match) -> words
VALUE_LIMIT = 64  # characters of one value taken from a row (a name, a search)


def _v(text: str | None) -> str:
    return shown(text or "", VALUE_LIMIT)


def _named(t: Any, key: str, fallback: str) -> str:
    """The catalogue's words for ``key``; ``fallback`` (made safe) if it has none."""
    return t.known(key) or _v(fallback)


def _store(t: Any, store: str) -> str:
    return t("detail.chain") if store in ("chain", "") else _v(store)


def scope_words(t: Any, scope: str) -> str:
    """A bundle's scope: ``chain`` or ``store/S001``."""
    kind, _, store = scope.partition("/")
    return t("detail.chain") if scope == "chain" else (
        t("detail.store", store=_v(store)) if kind == "store" and store else _v(scope))


def _search(t: Any, m: re.Match[str]) -> str:
    how = []
    if m["card"]:
        how.append(t("detail.by_card", last4=_v(m["card"])))
    if m["phone"]:
        how.append(t("detail.by_phone", last4=_v(m["phone"])))
    if m["name"] is not None:
        how.append(t("detail.by_name", name=_v(m["name"])))
    found = t("detail.found", n=int(m["n"]))
    ids = m["ids"].strip(",")
    return t("detail.search", how=t("detail.or").join(how), found=found) + (
        t("detail.members_listed", ids=_v(ids.replace(",", ", "))) if ids else "")


def _audit_search(t: Any, m: re.Match[str]) -> str:
    parts = []
    for name in ("actor", "action"):
        try:
            value = ast.literal_eval(m[name])
        except (ValueError, SyntaxError):
            value = m[name]
        if value:
            parts.append(t(f"detail.filter.{name}", value=_v(str(value))))
    if m["before"] != "None":
        parts.append(t("detail.filter.before", n=m["before"]))
    return t("detail.sep").join(parts) if parts else t("detail.filter.all")


def _statement(t: Any, m: re.Match[str]) -> str:
    return t("detail.newest") if m["before"] == "None" else t("detail.before", n=m["before"])


def _when(text: str) -> str:
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M %z")
    except ValueError:
        return _v(text)


REGISTERED = ("removed", "kept", "absent", "no register")


def _terminal_revoke(t: Any, m: re.Match[str]) -> str:
    registered = m["register"]
    register = (t("detail.register." + registered.replace(" ", "_"))
                if registered in REGISTERED else _v(registered))
    broker = (t("detail.broker_not_reloaded") if m["broker"] == "not reloaded"
              else t("detail.broker_reloaded", pid=_v(m["broker"])))
    return t("detail.terminal_revoke", serials=_v(m["serials"]) or "—", register=register,
             broker=broker)


def op_words(t: Any, detail: Any) -> list[str]:
    """A member operation's detail (``member_op.detail``, a dict) as words, one a field: the
    points it moved, the cards, the fields edited; a card's keyed hash is left out (no words
    for a person); a field no catalogue names as ``field: value``."""
    said = []
    for key, value in (detail.items() if isinstance(detail, dict) else ()):
        if key.endswith("_hash"):
            continue
        if key == "fields" and isinstance(value, list):
            said.append(t("detail.fields", fields=t("detail.list_sep").join(
                _named(t, f"member.{field}", str(field)) for field in value)))
        elif key in ("points", "debt") and isinstance(value, int):
            said.append(t(f"detail.{key}", n=f"{value:+d}" if key == "points" else value))
        elif key in ("lost_card", "new_card", "merged_card", "merged_member",
                     "merged_members", "line"):
            said.append(t(f"detail.{key}", value=_v(str(value))))
        elif key == "tier" and isinstance(value, str):
            said.append(t("detail.tier", value=_v(t.tier(value))))
        elif key == "store":
            said.append(t("detail.store", store=_v(str(value))) if value else t(
                "detail.no_store"))
        else:
            said.append(f"{_v(str(key))}: {_v(str(value))}")
    return said


def _operation(t: Any, m: re.Match[str]) -> str:
    """A member operation's ``op SEQ: {...}``: the operation's number and what it moved."""
    try:
        detail = ast.literal_eval(m["detail"])
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        detail = None
    if not isinstance(detail, dict):
        return t("detail.op", seq=m["seq"]) + t("detail.sep") + _v(m["detail"])
    return t("detail.sep").join([t("detail.op", seq=m["seq"]), *op_words(t, detail)])


def _refused(t: Any, m: re.Match[str]) -> str:
    """A refused member operation: ``[CODE/FIELD] words`` (the refusal's code and field are
    written before the service's words since session 15) by :meth:`Translator.refusal`; an
    older row's words as written."""
    if m["code"] is None:
        return shown(m["words"], None)
    return shown(t.refusal(m["code"], m["field"] or "", m["words"]), None)


_IMPORT_PROBLEM = re.compile(r"line (\d+) ([a-z_]+)/([a-z_]+)")


def _import_refused(t: Any, m: re.Match[str]) -> str:
    """``N problem(s), nothing imported: line 5 points/invalid; ...`` (each problem by its line
    and column since session 15; an older row's problems in the service's words, as written)."""
    problems = [_IMPORT_PROBLEM.fullmatch(part) for part in m["rest"].split("; ")]
    if not all(problems):
        return t("import.problems", n=int(m["n"])) + " " + shown(m["rest"], None)
    return t("import.problems", n=int(m["n"])) + " " + t("detail.list_sep").join(
        t("detail.import_problem", line=p[1], column=t.import_column(p[2]))
        for p in problems if p is not None)


def _list(t: Any, m: re.Match[str]) -> str:
    how = t("detail.list_csv") if m["how"] == "csv" else t("detail.list_page")
    return t("detail.list", store=_store(t, m["store"]), start=m["start"], end=m["end"],
             how=how, n=int(m["n"]), total=int(m["total"]))


def _campaign(t: Any, m: re.Match[str]) -> str:
    said = [_named(t, f"care.segment.{m['segment']}", m["segment"]),
            t("detail.days_default") if m["days"] == "None" else t("care.n_days", n=m["days"]),
            _named(t, f"care.channel.{m['channel']}", m["channel"])]
    if m["bonus"] != "0":
        said.append(t("care.bonus_n", n=m["bonus"]))
    if m["store"]:
        said.append(t("detail.store", store=_v(m["store"])))
    return t("detail.sep").join(said)


def _queued(t: Any, m: re.Match[str]) -> str:
    counts = [t("detail.members_n", n=int(m["members"]))]
    for part in (m["rest"] or "").split(", "):
        state, _, n = part.partition(" ")
        if state and n.isdigit():
            counts.append(f"{_named(t, f'care.msg.{state}', state)} {n}")
    return t("detail.sep").join(counts)


def _bonus(t: Any, m: re.Match[str]) -> str:
    said = t("detail.bonus", points=m["points"], n=int(m["n"]))
    return said + (t("detail.sep") + t("detail.bonus_refused", n=int(m["refused"]))
                   if m["refused"] else "")


def _consent(t: Any, m: re.Match[str]) -> str:
    return t("detail.consent", channel=_named(t, f"care.channel.{m['channel']}", m["channel"]),
             answer=t("care.opt_in") if m["answer"] == "opt-in" else t("care.opt_out"),
             source=_named(t, f"care.source.{m['source']}", m["source"]))


def _rules(t: Any, m: re.Match[str]) -> str:
    said = t("detail.rules", scopes=t("detail.list_sep").join(
        scope_words(t, scope) for scope in m["scopes"].split()), sha=m["sha"])
    return said + (t("detail.sep") + t("release.from", v=m["source"]) if m["source"] else "")


def _user_add(t: Any, m: re.Match[str]) -> str:
    said = t("detail.role", role=_named(t, f"role.{m['role']}", m["role"]))
    return said + (t("detail.sep") + t("detail.stores", stores=_v(m["stores"]))
                   if m["stores"] else "")


def _said(key: str, **values: Callable[[Any, str], str]) -> Said:
    """Words from one catalogue key filled with the match's groups (each made safe, or given
    to its function in ``values``)."""
    def say(t: Any, m: re.Match[str]) -> str:
        filled = {name: (values[name](t, text) if name in values else _v(text))
                  for name, text in m.groupdict().items()}
        return t(key, **filled)
    return say


_OP = (r"op (?P<seq>\d+): (?P<detail>.*)", _operation)
_REFUSED = (r"(?:\[(?P<code>[a-z_]+)/(?P<field>[a-z_]*)\] )?(?P<words>.*)", _refused)
_RULES = (r"(?P<scopes>\S+(?: \S+)*) sha256 (?P<sha>[0-9a-f]+)(?: from v(?P<source>\d+))?",
          _rules)

# action -> (the pattern its writer's detail takes, what to say); an action ending in ``.*``
# covers every member operation (``member.adjust``), ``.*.refused`` their refusals.
READERS: dict[str, tuple[str, Said]] = {
    "login.failed": (r"from (?P<client>.*)", _said("detail.from")),
    "login.throttled": (r"from (?P<client>.*)", _said("detail.from")),
    "audit.search": (r"actor=(?P<actor>.*) action=(?P<action>.*) before=(?P<before>None|\d+)",
                     _audit_search),
    "member.search": (r"(?:card ending (?P<card>\S{1,4})(?: or (?=phone|name)|(?=: )))?"
                      r"(?:phone ending (?P<phone>\S{1,4})(?: or (?=name)|(?=: )))?"
                      r"(?:name (?P<name>.*))?: (?P<n>\d+) found (?P<ids>[^ ]*)", _search),
    "member.view": (r"care campaign (?P<campaign>\d+): message preview",
                    _said("detail.preview")),
    "member.statement": (r"before (?P<before>None|\d+)", _statement),
    "member.import": (r"(?P<n>\d+) members, (?P<points>\d+) points, ops (?P<first>\d+)-"
                      r"(?P<last>\d+)", _said("detail.import")),
    "member.import.refused": (r"(?P<n>\d+) problem\(s\), nothing imported: (?P<rest>.*)",
                              _import_refused),
    "member.move": (r"home store (?P<old>.*) -> (?P<new>.*)",
                    _said("detail.move", old=lambda t, s: "—" if s == "-" else _v(s))),
    "member.list": (r"(?P<store>\S+) (?P<start>[0-9-]+)\.\.(?P<end>[0-9-]+) (?P<how>page|csv): "
                    r"(?P<n>\d+) of (?P<total>\d+) members", _list),
    "member.*": _OP,
    "member.*.refused": _REFUSED,
    "enroll.issue": (r"ref (?P<ref>[0-9a-f]+), valid until (?P<until>.*)",
                     _said("detail.enroll_issue", until=lambda t, s: _when(s))),
    "enroll.revoke": (r"ref (?P<ref>[0-9a-f]+)", _said("detail.enroll_ref")),
    "terminal.revoke": (r"serials (?P<serials>[0-9a-f, ]*); register (?P<register>.*); "
                        r"broker (?P<broker>\d+|not reloaded)", _terminal_revoke),
    "terminal.command": (r"(?P<name>[a-z_]+) (?P<id>[0-9a-f-]+)", _said(
        "detail.command", name=lambda t, s: _named(t, f"cmd.{s}", s))),
    "rules.backtest": (r"(?P<n>\d+) days", _said("detail.backtest")),
    "rules.policy": (r"(?P<value>on|off)", _said(
        "detail.policy", value=lambda t, s: t(f"detail.policy.{s}"))),
    "rules.stage": _RULES,
    "rules.chain": _RULES,
    "rules.rollback": _RULES,
    "rules.push": (r"(?P<scope>\S+) sha256 (?P<sha>[0-9a-f]+) key (?P<signer>.*)", _said(
        "detail.push", scope=scope_words)),
    "user.add": (r"role (?P<role>[a-z_]+)(?:, stores (?P<stores>.*))?", _user_add),
    "token.issue": (r"for (?P<name>.*)", _said("detail.token_for")),
    "token.revoke": (r"of (?P<name>.*)", _said("detail.token_of")),
    "care.campaign.create": (r"(?P<segment>[a-z_]+) days=(?P<days>None|\d+) "
                             r"(?P<channel>[a-z]+) bonus=(?P<bonus>\d+)(?: store=(?P<store>.*))?",
                             _campaign),
    "care.campaign.queue": (r"members (?P<members>\d+)(?:, (?P<rest>.*))?", _queued),
    "care.campaign.bonus": (r"bonus of (?P<points>\d+) points to (?P<n>\d+) members?"
                            r"(?:; (?P<refused>\d+) members? refused .*)?", _bonus),
    "care.consent": (r"(?P<channel>[a-z]+) (?P<answer>opt-in|opt-out) \((?P<source>[a-z]+)\)",
                     _consent),
}
_COMPILED = {action: (re.compile(pattern, re.S), say)
             for action, (pattern, say) in READERS.items()}


def reader(action: str) -> tuple[re.Pattern[str], Said] | None:
    found = _COMPILED.get(action)
    if found is not None:
        return found
    kind, _, rest = action.partition(".")
    if kind != "member" or not rest:
        return None
    return _COMPILED.get("member.*.refused" if rest.endswith(".refused") else "member.*")


def detail_words(t: Any, action: str, detail: str) -> str:
    """``detail`` of an ``action``'s audit row in ``t``'s language; as stored (made safe) when
    no reader recognises it."""
    if not detail:
        return ""
    found = reader(action)
    if found is not None:
        pattern, say = found
        match = pattern.fullmatch(detail)
        if match is not None:
            return say(t, match)
    return shown(detail, None)
