"""`posterm-hq expire`: the chain-wide expiry sweep, run daily by HQ (a timer or cron).

    posterm-hq expire --db hq.db --rules rules.toml --card-key-file card.key [--at ISO-TIME]
        [--workers N]

HQ holds the authoritative balances, so it expires lots by the same engine and rules as the
terminals; a terminal's own sweep only keeps its local view right.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from terminal.hq.bundles import BuildError
from terminal.hq.chain_ledger import SWEEP_CHUNK, SWEEP_WORKERS
from terminal.hq.collect import open_ledger


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, required=True, help="the chain's rules TOML")
    parser.add_argument("--card-key-file", type=Path, required=True)
    parser.add_argument("--at", help="sweep as of this ISO 8601 time with zone (default: now)")
    parser.add_argument("--workers", type=_workers, default=SWEEP_WORKERS,
                        help="PostgreSQL: connections writing chunks at once (default "
                             f"{SWEEP_WORKERS}; SQLite sweeps with one)")


def _workers(text: str) -> int:
    workers = int(text)
    if not 1 <= workers <= 64:
        raise argparse.ArgumentTypeError(f"--workers is 1 to 64, not {workers}")
    return workers


def _when(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"--at {text!r} carries no zone")
    return at


def run(args: argparse.Namespace) -> int:
    try:
        at = _when(args.at)
        ledger = open_ledger(args.db, args.rules, args.card_key_file)
    except (ValueError, BuildError, OSError) as exc:
        print(f"posterm-hq expire: {exc}", file=sys.stderr)
        return 2
    try:
        result = ledger.thread.call(ledger.expire, at, SWEEP_CHUNK, args.workers)
    finally:
        ledger.close()
    print(json.dumps({"as_of": at.isoformat(), "lots": result.lots, "points": result.points,
                      "members": result.members}))
    return 0
