"""`posterm-hq console`: the HQ web console.

    posterm-hq console --db URL --rules rules.toml --card-key-file card.key \
        --listen 127.0.0.1:8080 [--host broker --ca ca.crt --cert hq.crt --key hq.key]

Serve it behind a TLS-terminating proxy; ``--insecure-cookies`` is for a plain-HTTP address
on this machine only (demos, tests): the cookies then lack the Secure flag.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from terminal.hq.bundles import BuildError, read_toml
from terminal.hq.console.app import build
from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import Rules


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, required=True, help="the chain's rules TOML")
    parser.add_argument("--card-key-file", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    parser.add_argument("--insecure-cookies", action="store_true",
                        help="cookies without the Secure flag (plain HTTP on this machine)")


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        host, port = _listen(args.listen)
        rules = Rules.from_mapping(read_toml(args.rules))
        card_key = args.card_key_file.read_bytes().strip()
    except (BuildError, RulesError, OSError, ValueError) as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    app = build(args.db, rules, card_key, secure_cookies=not args.insecure_cookies)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
    return 0
