"""`posterm-hq rules validate|lint|diff|backtest`: the rules studio on the command line.

    posterm-hq rules validate CANDIDATE.toml [--json]
    posterm-hq rules lint CANDIDATE.toml --in-force RULES.toml [--now ISO] [--lang zh|en] [--json]
    posterm-hq rules diff CANDIDATE.toml --in-force RULES.toml [--scope chain]
                          [--also SCOPE IN_FORCE CANDIDATE ...] [--json]

``validate`` exits 1 when the engine refuses the file (the message names the key and its line);
``lint`` exits 0 and prints its warnings (3 when there are any, so a script can stop on them).
``stage|approve|rollback|history|policy``: :mod:`terminal.hq.rules_studio.release_cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.hq.rules_studio import release_cli
from terminal.hq.rules_studio.diff import diff, render
from terminal.hq.rules_studio.lint import Finding, lint
from terminal.hq.rules_studio.source import engine_key
from terminal.hq.rules_studio.validate import Validation, validate

WARNED = 3  # lint's exit status when it has warnings


class StudioError(ValueError):
    """An input is unusable; the message names the file and the problem."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("validate", help="check a rules file with the engine's own rules")
    check.add_argument("rules", type=Path)
    check.add_argument("--json", action="store_true")
    warn = sub.add_parser("lint", help="warn about dangerous changes against the rules in force")
    warn.add_argument("rules", type=Path, help="the candidate rules TOML")
    warn.add_argument("--in-force", type=Path, required=True, help="the rules the chain runs")
    warn.add_argument("--now", type=datetime.fromisoformat, default=None,
                      help="judge promotion windows as of this ISO time (default: now)")
    warn.add_argument("--lang", choices=("zh", "en"), default="zh")
    warn.add_argument("--json", action="store_true")
    show = sub.add_parser("diff", help="what the candidate changes, per scope")
    show.add_argument("rules", type=Path, help="the candidate rules TOML")
    show.add_argument("--in-force", type=Path, required=True)
    show.add_argument("--scope", default="chain", help="the scope of this pair (chain, store/S001)")
    show.add_argument("--also", nargs=3, action="append", default=[],
                      metavar=("SCOPE", "IN_FORCE", "CANDIDATE"), help="another scope's pair")
    show.add_argument("--json", action="store_true")
    replay = sub.add_parser("backtest", help="replay the last N days of the chain's history "
                            "under the candidate and under the rules in force")
    replay.add_argument("rules", type=Path, help="the candidate rules TOML")
    replay.add_argument("--db", required=True, help="HQ's database: SQLite path or postgresql://")
    replay.add_argument("--days", type=int, required=True)
    replay.add_argument("--in-force", type=Path, default=None,
                        help="the rules the chain runs (default: the demo chain's, "
                        "../shared/examples/rules.toml)")
    replay.add_argument("--until", type=datetime.fromisoformat, default=None,
                        help="the window's end, an ISO time with a zone (default: the newest "
                        "record, so the same database gives the same window)")
    replay.add_argument("--json", action="store_true")
    release_cli.configure(sub)


def run(args: argparse.Namespace) -> int:
    if args.action in release_cli.ACTIONS:
        return release_cli.run(args)
    try:
        if args.action == "validate":
            return _validate(args)
        if args.action == "lint":
            return _lint(args)
        if args.action == "diff":
            return _diff(args)
        return _backtest(args)
    except StudioError as exc:
        print(f"rules {args.action}: {exc}", file=sys.stderr)
        return 1


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StudioError(f"{path}: cannot read the rules file: {exc}") from None


def checked(path: Path) -> Validation:
    """The file validated; refused -> StudioError naming the file, the line and the key."""
    result = validate(read_text(path))
    if not result.ok:
        raise StudioError(f"{path}: {result.problems[0]}")
    return result


def _validate(args: argparse.Namespace) -> int:
    result = validate(read_text(args.rules))
    if args.json:
        print(json.dumps({"ok": result.ok, "problems": [
            {**p.located(), "message": p.message} for p in result.problems],
            "unknown_keys": list(result.rules.unknown_keys) if result.rules else []},
            ensure_ascii=False))
    elif result.ok:
        assert result.rules is not None
        print(f"{args.rules}: OK ({result.rules.name})")
        for key in result.rules.unknown_keys:
            print(f"  unknown key (ignored by this version): {key}")
    else:
        print(f"{args.rules}: {result.problems[0]}", file=sys.stderr)
    return 0 if result.ok else 1


def finding_json(finding: Finding, candidate: Validation) -> dict[str, Any]:
    assert candidate.mapping is not None
    key = engine_key(finding.key, candidate.mapping)
    line = next((candidate.lines[k] for k in (key, key.rsplit(".", 1)[0])
                 if k in candidate.lines), 0)
    return {"code": finding.code, "key": finding.key, "line": line, "zh": finding.zh,
            "en": finding.en}


def _lint(args: argparse.Namespace) -> int:
    in_force, candidate = checked(args.in_force), checked(args.rules)
    assert in_force.rules is not None and candidate.rules is not None
    now = args.now or datetime.now(UTC)
    if now.tzinfo is None:
        raise StudioError(f"--now {now.isoformat()} carries no zone")
    findings = [finding_json(f, candidate) for f in lint(in_force.rules, candidate.rules, now)]
    if args.json:
        print(json.dumps({"warnings": findings}, ensure_ascii=False, indent=1))
    else:
        for f in findings:
            print(f"line {f['line']}: [{f['code']}] {f['key']}: {f[args.lang]}")
        print(f"{len(findings)} 条警告 / warning(s)")
    return WARNED if findings else 0


def _diff(args: argparse.Namespace) -> int:
    pairs = [(args.scope, args.in_force, args.rules)] + [
        (scope, Path(old), Path(new)) for scope, old, new in args.also]
    scopes = {}
    for scope, old, new in pairs:
        before, after = checked(old), checked(new)
        assert before.mapping is not None and after.mapping is not None
        scopes[scope] = diff(before.mapping, after.mapping)
    if args.json:
        print(json.dumps({scope: [c.as_json() for c in changes]
                          for scope, changes in scopes.items()}, ensure_ascii=False, indent=1))
    else:
        print(render(scopes))
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from terminal.daemon.sim.demo import demo_rules
    from terminal.hq.rules_studio.jobs import run_backtest

    in_force, candidate = checked(args.in_force or demo_rules()), checked(args.rules)
    assert in_force.rules is not None and candidate.rules is not None
    if args.days < 1:
        raise StudioError(f"--days {args.days}: the window needs at least one day")
    if args.until is not None and args.until.tzinfo is None:
        raise StudioError(f"--until {args.until.isoformat()} carries no zone")
    try:
        result = run_backtest(args.db, in_force.rules, candidate.rules, args.days, args.until)
    except ValueError as exc:  # a database of another schema version, a bad URL
        raise StudioError(f"--db: {exc}") from None
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(summary(result))
    return 0 if result["check"]["matches"] else 2


def summary(result: dict[str, Any]) -> str:
    window = result["window"]
    out = [f"window {window['from']} .. {window['until']}: {window['events']} events"]
    for label, side in (("in force", result["in_force"]), ("candidate", result["candidate"])):
        out.append(f"{label:>10}: issued {side['points_issued']}, redeemed "
                   f"{side['points_redeemed']}, expired {side['points_expired']}, liability "
                   f"{side['liability_end']} points = {side['liability_end_yuan']} yuan")
    out.append(f"liability change {result['liability_change_yuan']} yuan; "
               f"{result['tier_changes']} member(s) change tier")
    check = result["check"]
    out.append("check: the in-force replay gives what the ledger recorded" if check["matches"]
               else f"check FAILED: {check['differences']}")
    return "\n".join(out)
