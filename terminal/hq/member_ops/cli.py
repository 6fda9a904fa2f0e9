"""`posterm-hq member ACTION ...`: HQ's member operations from the command line.

    posterm-hq member freeze CARD --reason "card reported stolen" --actor ann \
        --db hq.db --rules rules.toml --card-key-file card.key
    posterm-hq member adjust CARD 500 --reason "goodwill: late delivery" --actor ann ...
    posterm-hq member unfreeze CARD --reason ... --actor ...
    posterm-hq member replace LOST_CARD NEW_CARD --reason "reported lost at S002" --actor ann ...
    posterm-hq member merge KEPT_CARD DUPLICATE_CARD --reason "one person, two cards" ...
    posterm-hq member edit CARD [--name 李四] [--phone 139...] [--birthday 1990-05-01] ...
    posterm-hq member erase CARD --reason "erasure request of 2026-12-01" --actor ann ...
    posterm-hq member import members.csv --reason "moving from SystemX" --actor ann ...
    posterm-hq member republish --db hq.db   # every state signed again, taken again by every till

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
from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.errors import ImportRejected, InvalidRequest, MemberOpError
from terminal.hq.member_ops.publish import forget_published
from terminal.hq.member_ops.service import ImportResult, MemberOps, OpResult
from terminal.loyalty.errors import RulesError
from terminal.loyalty.store.binding import bound_call


def _card(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("card", help="the member's card number")


def _points(parser: argparse.ArgumentParser) -> None:
    _card(parser)
    parser.add_argument("points", type=int, help="points to add (negative: to take)")


def _two(first: str, second: str) -> Callable[[argparse.ArgumentParser], None]:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(first)
        parser.add_argument(second)
    return arguments


def _profile(parser: argparse.ArgumentParser) -> None:
    _card(parser)
    parser.add_argument("--name", help="the new name (\"\" clears it)")
    parser.add_argument("--phone", help="the new phone number (\"\" clears it)")
    parser.add_argument("--birthday", help="YYYY-MM-DD (\"\" clears it)")


def _file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, help="members as CSV: card,tier,points[,name,phone,"
                        "birthday,expires,store]")


def _import(ops: MemberOps, args: argparse.Namespace) -> ImportResult:
    try:
        text = args.csv.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{args.csv}: {exc}", "csv") from None
    return ops.import_members(text, actor=args.actor, reason=args.reason)


# action -> (help, arguments, call)
ACTIONS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                         Callable[[MemberOps, argparse.Namespace], OpResult | ImportResult]]] = {
    "adjust": ("add or take points, with the reason", _points,
               lambda ops, a: ops.adjust(a.card, a.points, actor=a.actor, reason=a.reason)),
    "freeze": ("freeze a card: it neither earns nor redeems at any till", _card,
               lambda ops, a: ops.freeze(a.card, actor=a.actor, reason=a.reason)),
    "unfreeze": ("unfreeze a frozen card", _card,
                 lambda ops, a: ops.unfreeze(a.card, actor=a.actor, reason=a.reason)),
    "replace": ("a card reported lost: the member goes on under a new card", _two("lost", "new"),
                lambda ops, a: ops.replace_card(a.lost, a.new, actor=a.actor, reason=a.reason)),
    "merge": ("merge a duplicate membership into the member kept",
              _two("survivor", "duplicate"),
              lambda ops, a: ops.merge(a.survivor, a.duplicate, actor=a.actor, reason=a.reason)),
    "edit": ("change a member's name, phone or birthday", _profile,
             lambda ops, a: ops.edit_profile(a.card, actor=a.actor, reason=a.reason,
                                             name=a.name, phone=a.phone, birthday=a.birthday)),
    "erase": ("erase a member's personal data on request (the ledger stays, anonymous)", _card,
              lambda ops, a: ops.erase(a.card, actor=a.actor, reason=a.reason)),
    "import": ("import members with opening balances and tiers from CSV (all or nothing)",
               _file, _import),
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
    again = sub.add_parser("republish", help="sign every card's member state again with the "
                           "collectors' key and have every till take every state again (a key "
                           "rotated, a till that refused states): the running collectors do it")
    again.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")


def _republish(args: argparse.Namespace) -> int:
    try:
        db = open_hq_database(args.db)
    except (OSError, ValueError) as exc:
        print(f"member republish: {exc}", file=sys.stderr)
        return 1
    try:
        cards = bound_call(db, forget_published, db)
    finally:
        db.close()
    print(f"{cards} card states to publish again: a collector started with --keys signs them "
          "again and tells every till to take them all again, at its own pace (200 a page, two "
          "pages a second)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "republish":
        return _republish(args)
    try:
        ops = MemberOps.open(args.db, args.rules, args.card_key_file)
    except (BuildError, RulesError, OSError, ValueError) as exc:
        print(f"member {args.action}: {exc}", file=sys.stderr)
        return 1
    try:
        result = ACTIONS[args.action][2](ops, args)
    except ImportRejected as exc:
        print(f"member import: refused, nothing imported: {len(exc.problems)} problem(s)",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"{args.csv}:{problem.line}: {problem.message}", file=sys.stderr)
        return 1
    except MemberOpError as exc:
        print(f"member {args.action}: refused ({exc.code}): {exc}", file=sys.stderr)
        return 1
    finally:
        ops.close()
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False, sort_keys=True))
    return 0
