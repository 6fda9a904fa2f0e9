"""`posterm-hq console`: the HQ web console.

    posterm-hq console --db URL --rules rules.toml --card-key-file card.key \
        --listen 127.0.0.1:8080 [--host broker --ca ca.crt --cert hq.crt --key hq.key]

With the broker options (HQ's certificate, CN ``hq``) the console sends commands to terminals
and reads their answers; without them the fleet page is read-only. With ``--keys`` too, the
rules studio stages, approves and rolls back signed bundles (docs/rules-studio.md). With
``--revoke-ca`` (on the CA and broker host) IT revokes a terminal's certificates and takes it out
of the broker's ACL from the enrollment page, as ``posterm-hq ca revoke`` does.

Serve it behind a TLS-terminating proxy; ``--insecure-cookies`` is for a plain-HTTP address
on this machine only (demos, tests): the cookies then lack the Secure flag.
"""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import NoReturn

from terminal.hq import acl
from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.bundles import BuildError, read_catalogue, read_toml
from terminal.hq.care import config as care_config
from terminal.hq.console.app import build, rules_studio
from terminal.hq.console.fleet import Thresholds
from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.hq.pki.cli import CRL
from terminal.hq.pki.revocation import Revoker
from terminal.hq.rules_studio.pushing import Keys
from terminal.loyalty.errors import RulesError
from terminal.loyalty.rules import Rules
from terminal.protocol.mqtt import MqttConfig
from terminal.protocol.topics import Topics, check_id


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, required=True, help="the chain's rules TOML")
    parser.add_argument("--card-key-file", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    parser.add_argument("--insecure-cookies", action="store_true",
                        help="cookies without the Secure flag (plain HTTP on this machine)")
    studio = parser.add_argument_group("rules studio (staging and pushing bundles)")
    studio.add_argument("--keys", type=Path, help="keygen's directory (signing.key, "
                        "delegation.json, root.pub): without it the studio cannot push")
    studio.add_argument("--catalogue", type=Path, help="the catalogue every bundle carries "
                        "(default: the newest release's)")
    studio.add_argument("--settings", type=Path, help="the terminal settings every bundle "
                        "carries (default: the newest release's)")
    parser.add_argument("--care-config", type=Path, default=None,
                        help="member care's config (the sender's): the templates a campaign's "
                        "preview fills; default: the built-in templates")
    studio.add_argument("--stage-store", default="S001", help="the store a release goes to "
                        "first (default S001)")
    broker = parser.add_argument_group("broker (for terminal commands and bundle pushes)")
    add_broker_options(broker, "posterm-hq-console", optional=True)
    broker.add_argument("--health-interval", type=float, default=300.0,
                        help="seconds between asking every online terminal for a status report "
                        "(the backlog alert's samples); 0: never")
    broker.add_argument("--offline-after", type=float, default=15.0,
                        help="minutes offline before a terminal is an alert")
    ca = parser.add_argument_group("certificate authority (IT cuts terminals off on /enroll)")
    ca.add_argument("--revoke-ca", type=Path, help="the CA directory (posterm-hq ca init)")
    ca.add_argument("--crl", type=Path, default=CRL, help=f"the broker's CRL file ({CRL})")
    ca.add_argument("--register", type=Path, default=acl.REGISTER)
    ca.add_argument("--static", type=Path, default=acl.STATIC)
    ca.add_argument("--acl-file", type=Path, default=acl.OUTPUT, help="the broker's acl_file")
    ca.add_argument("--broker-pid", type=Path, help="the broker's PID file, to reload it")


def _mqtt(args: argparse.Namespace) -> MqttConfig | None:
    if args.host is None:
        return None
    return mqtt_config(args, backoff_max=10.0)


def _revoker(args: argparse.Namespace) -> Revoker | None:
    if args.revoke_ca is None:
        return None
    return Revoker(args.revoke_ca, args.crl, BrokerAcl(args.register, args.static,
                                                       args.acl_file, args.broker_pid),
                   args.topic_root)


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
        rules_text = args.rules.read_text(encoding="utf-8")  # as written: the rules studio's
        card_key = args.card_key_file.read_bytes().strip()
        mqtt = _mqtt(args)
        topics = Topics(args.topic_root)
        if args.health_interval < 0 or args.offline_after <= 0:
            raise ValueError("--health-interval is >= 0 and --offline-after > 0")
        studio = rules_studio(
            args.db, rules_text, Keys.load(args.keys) if args.keys else None,
            read_catalogue(args.catalogue) if args.catalogue else None,
            read_toml(args.settings) if args.settings else None,
            check_id(args.stage_store, "store"))
        care = care_config.load(args.care_config)
    except (BuildError, RulesError, OSError, ValueError) as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    app = build(args.db, rules, card_key, secure_cookies=not args.insecure_cookies, mqtt=mqtt,
                topics=topics, health_interval=args.health_interval,
                thresholds=Thresholds(offline_after=timedelta(minutes=args.offline_after)),
                studio=studio, revoker=_revoker(args), care_config=care)
    # uvicorn shuts down gracefully on SIGTERM or SIGINT, then raises the signal again under the
    # handler that was there before it: this one, so that a stop asked for ends with status 0
    # rather than as killed by the signal.
    for asked in (signal.SIGTERM, signal.SIGINT):
        signal.signal(asked, _stopped_as_asked)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
    return 0


def _stopped_as_asked(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)
