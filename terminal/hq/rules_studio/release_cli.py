"""`posterm-hq rules stage|approve|rollback|history|policy`: releases on the command line.

    posterm-hq rules stage RULES.toml --store S001 --db URL --keys DIR --as NAME
                           [--catalogue F] [--settings F] [--backtest-days N] BROKER...
    posterm-hq rules approve VERSION --db URL --keys DIR --as NAME BROKER...
    posterm-hq rules rollback VERSION --db URL --keys DIR --as NAME BROKER...
    posterm-hq rules history --db URL [--version V] [--json]
    posterm-hq rules policy --two-person on|off --db URL --as NAME

``--as`` names the console user the command acts as: that user's role must allow the step
(``marketing`` or ``admin`` stage; ``admin`` approves, rolls back and sets the policy), and the
audit log records the user, ``via cli``. BROKER is ``--host --port --ca --cert --key`` (HQ's
certificate, as ``bundle push``). Exit 1: refused (nothing changed) or not pushed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from pathlib import Path
from typing import Any

from terminal.hq.bundles import (
    BuildError,
    publish_retained,
    read_catalogue,
    read_toml,
)
from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.roles import Forbidden, Principal
from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.hq.rules_studio import releases, rollout
from terminal.hq.rules_studio.pushing import Keys, Publish, made, published, push
from terminal.protocol import bundle
from terminal.protocol.topics import Topics

ACTIONS = ("stage", "approve", "rollback", "history", "policy")


def configure(sub: Any) -> None:
    """Add the release actions to ``posterm-hq rules``'s sub-parsers."""
    stage = sub.add_parser("stage", help="sign a candidate and push it to one store first")
    stage.add_argument("rules", type=Path)
    stage.add_argument("--store", default="S001")
    stage.add_argument("--catalogue", type=Path, help="products, as bundle build reads them "
                       "(default: the newest release's)")
    stage.add_argument("--settings", type=Path, help="terminal settings TOML (default: the "
                       "newest release's)")
    stage.add_argument("--backtest-days", type=int, default=0,
                       help="backtest over N days against the chain's rules first, and keep "
                       "the figures with the release (0: none)")
    for name, text in (("approve", "push a staged release to the whole chain"),
                       ("rollback", "push an earlier release's content again, as a new "
                        "version")):
        step = sub.add_parser(name, help=text)
        step.add_argument("version", type=int)
    for parser in (stage, sub.choices["approve"], sub.choices["rollback"]):
        parser.add_argument("--db", required=True)
        parser.add_argument("--as", dest="actor", required=True, help="the console user")
        parser.add_argument("--keys", type=Path, required=True,
                            help="keygen's directory: signing.key, delegation.json, root.pub")
        add_broker_options(parser, "posterm-hq-rules")
        parser.add_argument("--timeout", type=float, default=10.0)
    shown = sub.add_parser("history", help="every release, who made it, where it stands")
    shown.add_argument("--db", required=True)
    shown.add_argument("--version", type=int, help="one release, terminal by terminal")
    shown.add_argument("--json", action="store_true")
    policy = sub.add_parser("policy", help="whether a chain push needs a second person")
    policy.add_argument("--two-person", choices=("on", "off"), required=True)
    policy.add_argument("--db", required=True)
    policy.add_argument("--as", dest="actor", required=True)


def run(args: argparse.Namespace) -> int:
    db = ConsoleDb(args.db)
    try:
        if args.action == "history":
            return _history(db, args)
        who = db.call(accounts.user_principal, args.actor, "cli")
        if who is None:
            raise releases.ReleaseError(f"--as {args.actor}: no such active console user")
        if args.action == "policy":
            db.call(releases.set_two_person, who, args.two_person == "on")
            print(f"two-person approval of chain pushes: {args.two_person}")
            return 0
        row = asyncio.run(_step(db, who, args))
    except (releases.ReleaseError, Forbidden, BuildError, OSError) as exc:
        print(f"rules {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"v{row.version} ({row.kind}) pushed to {', '.join(json.loads(row.scopes))}")
    return 0


async def _step(db: ConsoleDb, who: Principal, args: argparse.Namespace) -> Any:
    keys = Keys.load(args.keys)
    config = mqtt_config(args, backoff_max=2.0)

    async def publish(found: list[tuple[str, bytes]]) -> None:
        await publish_retained(config, found, args.timeout)

    topics = Topics(args.topic_root)
    if args.action == "stage":
        content = db.call(releases.carried,
                          read_catalogue(args.catalogue) if args.catalogue else None,
                          read_toml(args.settings) if args.settings else None,
                          args.rules.read_text(encoding="utf-8"))
        step = functools.partial(releases.stage, backtest=_backtest(db, args, content))
        return await push(db, keys, topics, publish, step, who, content, args.store)
    step = releases.approve if args.action == "approve" else releases.rollback
    return await push(db, keys, topics, publish, step, who, args.version)


def push_built(db_url: str, actor: str, built: bundle.Bundle, message: bytes, rules_text: str,
               trust: bundle.TrustStore, topics: Topics, publish: Publish) -> bool:
    """``posterm-hq bundle push``: record a built bundle as a release of ``actor``'s
    (:func:`releases.record`), publish it and record the outcome; False (said on stderr) when
    refused or not pushed."""
    db = ConsoleDb(db_url)
    try:
        who = db.call(accounts.user_principal, actor, "cli")
        if who is None:
            raise releases.ReleaseError(f"--as {actor}: no such active console user")

        async def step() -> Any:
            row = await made(db, releases.record, who, built, message, rules_text)
            return await published(db, trust, topics, publish, row)
        asyncio.run(step())
    except (releases.ReleaseError, Forbidden) as exc:
        print(f"bundle push: {exc}", file=sys.stderr)
        return False
    finally:
        db.close()
    return True


def _backtest(db: ConsoleDb, args: argparse.Namespace,
              content: releases.Content) -> dict[str, Any] | None:
    if args.backtest_days <= 0:
        return None
    from terminal.daemon.sim.demo import demo_rules
    from terminal.hq.rules_studio.jobs import run_backtest
    from terminal.hq.rules_studio.validate import validate

    default = demo_rules().read_text(encoding="utf-8")
    in_force = validate(db.call(releases.in_force_text, default))
    candidate = validate(content.rules_text)
    if not candidate.ok or not in_force.ok:
        raise releases.ReleaseError(f"{args.rules}: {(candidate.problems or in_force.problems)[0]}")
    assert in_force.rules is not None and candidate.rules is not None
    result = run_backtest(args.db, in_force.rules, candidate.rules, args.backtest_days)
    return releases.backtest_summary(result, args.backtest_days)


def _history(db: ConsoleDb, args: argparse.Namespace) -> int:
    if args.version is not None:
        def one() -> dict[str, Any]:
            row = releases.get(args.version)
            return {**rollout.describe(row), "terminals": rollout.terminals(row)}
        try:
            data: Any = db.call(one)
        except releases.ReleaseError as exc:
            print(f"rules history: {exc}", file=sys.stderr)
            return 1
    else:
        data = db.call(rollout.history)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 0
    for release in [data] if args.version is not None else data:
        approved = f", approved by {release['approver']}" if release["approver"] else ""
        source = f" from v{release['source_version']}" if release["source_version"] else ""
        print(f"v{release['version']} {release['kind']}{source} {release['state']} "
              f"{' '.join(release['scopes'])}: by {release['author']} {release['created']}"
              f"{approved}; sha256 {release['content_sha'][:12]}")
        if "counts" in release:
            print("    " + ", ".join(f"{k} {v}" for k, v in release["counts"].items()))
        for line in release.get("terminals", []):
            why = f" {line['reason']}: {line['detail']}" if line["reason"] else ""
            print(f"    {line['store']}/{line['terminal']} {line['scope']}: {line['state']} "
                  f"(holds v{line['held']}){why}")
    return 0
