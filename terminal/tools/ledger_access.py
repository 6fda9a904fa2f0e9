"""What the ledger's command-line tools share: which database, rules and card key to open."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import load_rules
from terminal.loyalty.store import Identity, LedgerStore, StorageError
from terminal.tools.replay import REPLAY_CARD_KEY


def add_ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, required=True, help="the terminal's ledger file")
    parser.add_argument("--rules", type=Path, required=True, help="the rules TOML file")
    parser.add_argument(
        "--card-key-file", type=Path,
        help="the chain's card key (default: the replay key, for replay databases)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def open_ledger(args: argparse.Namespace) -> LedgerStore | None:
    """Open the ledger read-mostly, or print why not and return None."""
    try:
        if not args.db.exists():
            raise StorageError(f"{args.db}: no such ledger file")
        key = args.card_key_file.read_bytes().strip() if args.card_key_file else REPLAY_CARD_KEY
        return LedgerStore.open(args.db, load_rules(args.rules), key, Identity("", ""),
                                new_session=False)
    except (RulesError, StorageError, OSError, ValueError) as exc:
        print(f"posterm: {exc}", file=sys.stderr)
        return None


def now_utc() -> datetime:
    return datetime.now(UTC)
