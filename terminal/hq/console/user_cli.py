"""`posterm-hq user`: console accounts and API tokens.

    posterm-hq user add NAME --role ROLE [--stores S001,S002] --db URL [--password-file F]
    posterm-hq user token NAME --db URL          # prints a new token, once
    posterm-hq user revoke TOKEN_ID --db URL
    posterm-hq user tokens NAME --db URL

Without ``--password-file`` the password is asked for twice on the terminal (never an argument:
those show in ``ps`` and shell history).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.roles import ROLES, parse_stores


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "token", "revoke", "tokens"))
    parser.add_argument("name", help="user name (for revoke: the token id)")
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--role", choices=ROLES, help="for add")
    parser.add_argument("--stores", default="", help="for add: S001,S002 (store_manager)")
    parser.add_argument("--password-file", type=Path, help="for add: the password's file")


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return args.password_file.read_text("utf-8").rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise accounts.AccountError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "add":
            if args.role is None:
                raise accounts.AccountError("add needs --role")
            stores = parse_stores(args.stores)
            password = accounts.check_password(_password(args))
    except (accounts.AccountError, ValueError, OSError) as exc:
        print(f"user: {exc}", file=sys.stderr)
        return 2
    db = ConsoleDb(args.db)
    try:
        if args.action == "add":
            db.call(accounts.add_user, args.name, args.role, stores, password)
            print(f"user {args.name} added ({args.role})")
        elif args.action == "token":
            token = db.call(accounts.issue_token, args.name)
            print(token.secret)
            print(f"token id {token.id} (revoke: posterm-hq user revoke {token.id})",
                  file=sys.stderr)
        elif args.action == "revoke":
            db.call(accounts.revoke_token, args.name)
            print(f"token {args.name} revoked")
        else:
            for row in db.call(accounts.list_tokens, args.name):
                print(f"{row['id']}  {'revoked' if row['revoked'] else 'active'}")
    except accounts.AccountError as exc:
        print(f"user: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()
    return 0
