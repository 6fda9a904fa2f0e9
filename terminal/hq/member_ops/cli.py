"""`posterm-hq member ACTION ...`: HQ's member operations from the command line.

    posterm-hq member freeze CARD --reason "card reported stolen" --actor ann \
        --db hq.db --rules rules.toml --card-key-file card.key
    posterm-hq member adjust CARD 500 --reason "goodwill: late delivery" --actor ann ...
    posterm-hq member unfreeze CARD --reason ... --actor ...

Each prints the operation's result as JSON; a refusal prints its reason on stderr, exits 1 and
changes nothing. A running ``posterm-hq collect --keys DIR`` publishes the change to every till.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from terminal.hq.bundles import BuildError
from terminal.hq.member_ops.errors import MemberOpError
from terminal.hq.member_ops.service import MemberOps, OpResult
from terminal.loyalty.errors import RulesError


def _card(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", help="the member's card number")


def _points(parser: argparse.ArgumentParser) -> None:
    _card(parser)
    parser.add_argument("points", type=int, help="points to add (negative: to take)")


# action -> (help, arguments, call)
ACTIONS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                         Callable[[MemberOps, argparse.Namespace], OpResult]]] = {
    "adjust": ("add or take points, with the reason", _points,
               lambda ops, a: ops.adjust(a.card, a.points, actor=a.actor, reason=a.reason)),
    "freeze": ("freeze a card: it neither earns nor redeems at any till", _card,
               lambda ops, a: ops.freeze(a.card, actor=a.actor, reason=a.reason)),
    "unfreeze": ("unfreeze a frozen card", _card,
                 lambda ops, a: ops.unfreeze(a.card, actor=a.actor, reason=a.reason)),
}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (text, arguments, _) in ACTIONS.items():
        action = sub.add_parser(name, help=text)
        arguments(action)
        action.add_argument("--reason", required=True, help="why (kept with the operation)")
        action.add_argument("--actor", required=True, help="who makes the operation")
        action.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
        action.add_argument("--rules", type=Path, required=True, help="the chain's rules TOML")
        action.add_argument("--card-key-file", type=Path, required=True)


def run(args: argparse.Namespace) -> int:
    try:
        ops = MemberOps.open(args.db, args.rules, args.card_key_file)
    except (BuildError, RulesError, OSError, ValueError) as exc:
        print(f"member {args.action}: {exc}", file=sys.stderr)
        return 1
    try:
        result = ACTIONS[args.action][2](ops, args)
    except MemberOpError as exc:
        print(f"member {args.action}: refused ({exc.code}): {exc}", file=sys.stderr)
        return 1
    finally:
        ops.close()
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False, sort_keys=True))
    return 0
