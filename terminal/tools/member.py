"""`posterm member show CARD` and `posterm member statement CARD`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from terminal.loyalty.errors import Refused
from terminal.loyalty.money import yuan
from terminal.loyalty.operations import MemberView
from terminal.tools.ledger_access import add_ledger_arguments, now_utc, open_ledger


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("show", "statement"))
    parser.add_argument("card", help="the member's card number")
    add_ledger_arguments(parser)


def _view_lines(view: MemberView) -> list[str]:
    lines = [
        f"member   {view.name or '-'}  card ****{view.card_last4}",
        f"tier     {view.tier}  (qualifying spend {yuan(view.qualifying_spend_fen)} yuan)",
        f"balance  {view.balance} points" + (f"  (owes {view.debt})" if view.debt else ""),
    ]
    if view.next_tier is not None and view.spend_to_next_fen is not None:
        lines.append(f"next     {view.next_tier} after {yuan(view.spend_to_next_fen)} yuan more")
    lines += [f"expiring {e.points} points on {e.expires_at:%Y-%m-%d}" for e in view.expiring]
    return lines


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def run(args: argparse.Namespace) -> int:
    store = open_ledger(args)
    if store is None:
        return 2
    try:
        moment = store.moment(now_utc(), trusted=False)
        if args.what == "show":
            result: Any = store.member(args.card, moment)
        else:
            result = store.statement(args.card, moment)
    except Refused as exc:
        print(f"posterm member: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        json.dump(_jsonable(result), sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    view = result if args.what == "show" else result["member"]
    print("\n".join(_view_lines(view)))
    if args.what == "statement":
        print("\nseq     time                       kind     points  sale / reason")
        for e in result["entries"]:
            print(f"{e['seq']:<7} {e['time']:<26} {e['kind']:<8} {e['points']:>6}  "
                  f"{e['sale'] or e['reason']}")
        print("\nlot                                   earned      expires     points  left")
        for lot in result["lots"]:
            print(f"{lot['lot']:<37} {lot['earned'][:10]}  {(lot['expires'] or 'never')[:10]:<10}"
                  f"  {lot['points']:>6}  {lot['remaining']:>4}")
    return 0
