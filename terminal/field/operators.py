"""`posterm operator list|set|retire`: a technician or store manager keeps the till's staff.

It runs on the box beside the daemon, on the same ledger (SQLite in WAL mode: each writes in its
own short transaction). A PIN is read from the terminal, twice, or as one line of standard input
with ``--pin-stdin`` (for a script); never from the command line, which anyone on the box can read
in ``ps``. Every change is audited under ``--by`` (default: the login that ran the command, through
sudo too). The till sees a change at the operator's next sign-in.

    sudo -u posterm posterm operator set 3 zhao.min --role cashier --shown 赵敏
    sudo -u posterm posterm operator list
    sudo -u posterm posterm operator retire 3
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import pwd
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from terminal.core.configfile import ConfigError
from terminal.daemon.config import load_config
from terminal.daemon.keys import StartupError, read_card_key, read_pin_key
from terminal.field.doctor import PROVISIONED
from terminal.field.ledger_guard import recorder
from terminal.loyalty.errors import Refused, RulesError
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore, StorageError
from terminal.loyalty.store.operators import ROLES, SHOWN_MAX
from terminal.loyalty.store.staff import StaffMember

PROG = "posterm operator"


def configure(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=PROVISIONED,
                        help=f"the daemon's config (default: the provisioned {PROVISIONED})")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", parents=[common], help="every operator, retired ones too")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    put = sub.add_parser("set", parents=[common],
                         help="add an operator, or change their role, shown name and PIN")
    put.add_argument("number", type=int, help="the number they key at sign-in (1-9999)")
    put.add_argument("name", help="their id, as events and the audit carry it (1-32 of "
                     "0-9 A-Z a-z _ . -)")
    put.add_argument("--role", choices=ROLES, required=True)
    put.add_argument("--shown", default="", help="the name the till greets them by (at most "
                     f"{SHOWN_MAX} characters, Chinese or Latin; default: their id)")
    put.add_argument("--pin-stdin", action="store_true",
                     help="read the PIN as one line of standard input instead of asking twice")
    retire = sub.add_parser("retire", parents=[common], help="an operator can no longer sign in")
    retire.add_argument("number", type=int)
    for command in (put, retire):
        command.add_argument("--by", default=_login(),
                             help="who makes the change, for the audit (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        store, pin_key = _open(args.config)
    except (ConfigError, RulesError, StorageError, StartupError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        moment = store.moment(datetime.now(UTC), trusted=False)
        if args.action == "list":
            _print_staff(store.staff(moment), args.json)
            return 0
        if args.action == "set":
            pin = _read_pin(args.number, args.pin_stdin)
            new = store.put_operator(pin_key, args.number, args.name, args.role, pin,
                                     args.shown, args.by, moment)
            print(f"operator {args.number} ({args.name}, {args.role}) "
                  f"{'added' if new else 'changed'}")
        else:
            name = store.retire_operator(args.number, args.by, moment)
            print(f"operator {args.number} ({name}) retired")
        return 0
    except (Refused, EOFError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _open(config_path: Path) -> tuple[LedgerStore, bytes]:
    config = load_config(config_path)
    if not config.database.exists():
        raise StorageError(f"{config.database}: no ledger yet: start the till once first")
    _check_owner(config.database)
    if not config.rules_file.is_file():
        raise StorageError(f"{config.rules_file}: no rules yet: the till takes them from HQ "
                           "when it first links; set its operators after that")
    if not config.pin_key_file.exists():  # the till makes it at its first start; never here
        raise StorageError(f"{config.pin_key_file}: no PIN key: start the till once first")
    rules = load_rules(config.rules_file)
    card_key = read_card_key(config.card_key_file)
    pin_key = read_pin_key(config.pin_key_file)
    identity = Identity(config.terminal.store, config.terminal.terminal_id)
    return LedgerStore.open(config.database, rules, card_key, identity, new_session=False,
                            record=recorder(Path(config.paths.state_dir))), pin_key


def _check_owner(database: Path) -> None:
    """Run as the till's own user: SQLite's WAL files made by another (root, say) would be
    theirs, and the till could no longer open its ledger."""
    owner = database.stat().st_uid
    if os.geteuid() != owner:
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise StorageError(f"{database} belongs to {name}: run this as that user "
                           f"(sudo -u {name} posterm operator ...)")


def _read_pin(number: int, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise EOFError("no PIN on standard input")
        return line.rstrip("\r\n")
    pin = getpass.getpass(f"PIN for operator {number} (4-8 digits): ")
    if getpass.getpass("the same PIN again: ") != pin:
        raise ValueError("the two PINs differ: nothing changed")
    return pin


def _print_staff(staff: list[StaffMember], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{**asdict(m), "locked_until": m.locked_until.isoformat()
                           if m.locked_until else None} for m in staff], ensure_ascii=False))
        return
    print(f"{'no.':>4}  {'id':<32}  {'role':<7}  {'state':<20}  shown")
    for m in staff:
        state = ("retired" if not m.active else
                 f"locked until {m.locked_until.astimezone():%H:%M}" if m.locked_until else
                 "active")
        print(f"{m.number:>4}  {m.name:<32}  {m.role:<7}  {state:<20}  {m.shown or '-'}")


def _login() -> str:
    """Who runs the command: the sudo user behind it when there is one."""
    return os.environ.get("SUDO_USER") or getpass.getuser()
