"""`posterm-hq fleet --db URL`: every terminal's last status (online, epoch, versions, backlog,
printer, last seen, latest refusal)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from terminal.hq.db import open_or_say
from terminal.hq.models import HQ_MODELS, TerminalSeen
from terminal.hq.shown_text import shown
from terminal.loyalty.clock import from_micros


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--json", action="store_true", help="one JSON object per terminal")


def fleet() -> list[dict[str, Any]]:
    """Run with the HQ models bound."""
    return [{
        "terminal": f"{row.store}/{row.terminal}", "online": row.online, "epoch": row.epoch,
        "version": row.version, "rule_version": row.rule_version, "backlog": row.backlog,
        "printer": json.loads(row.devices).get("printer", "?"),
        # {"code", "waiting"} as the till sent it; None from a till that sends only its words
        "printer_state": json.loads(row.printer_state) if row.printer_state else None,
        "last_seen": from_micros(row.last_seen_us).isoformat(timespec="seconds"),
        "rejected": json.loads(row.rejected) if row.rejected else None,
    } for row in TerminalSeen.select().order_by(TerminalSeen.store, TerminalSeen.terminal)]


def _printer(row: dict[str, Any]) -> str:
    """The printer's code and the receipts waiting (``paper_out+2``), else the till's words;
    either with its invisible characters escaped (:func:`shown`)."""
    state = row["printer_state"]
    if isinstance(state, dict) and isinstance(state.get("code"), str):
        waiting = state.get("waiting")
        text = state["code"] + (f"+{waiting}" if isinstance(waiting, int) and waiting else "")
    else:
        text = str(row["printer"])
    return shown(text, None)


def run(args: argparse.Namespace) -> int:
    db = open_or_say(args.db, "fleet")
    if db is None:  # a schema of another version, not UTF8
        return 1
    with db.bind_ctx(HQ_MODELS):
        rows = fleet()
    db.close()
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    print(f"{'terminal':<20} {'state':<8} {'epoch':>5} {'version':<10} {'rules':>5} "
          f"{'backlog':>7} {'printer':<10} last seen / latest refusal")
    for row in rows:
        refusal = f"  refused {row['rejected']['what']}: {row['rejected']['reason']}" \
            if row["rejected"] else ""
        print(f"{row['terminal']:<20} {'online' if row['online'] else 'offline':<8} "
              f"{row['epoch']:>5} {row['version']:<10} {row['rule_version']:>5} "
              f"{row['backlog']:>7} {_printer(row):<10} {row['last_seen']}{refusal}")
    if not rows:
        print("(no terminal has reported yet)", file=sys.stderr)
    return 0
