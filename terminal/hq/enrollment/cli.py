"""`posterm-hq enroll ACTION`: one-visit enrollment of new terminals.

    posterm-hq enroll issue S001/T03 --db URL [--ttl 24h]
        prints a one-time code for the technician's provisioning file, and its expiry
    posterm-hq enroll template --ca CA_DIR --claim claim --root-pub keys/root.pub \
        --host mqtt.chain.example > posterm-provision.toml
        the provisioning file technicians start from: broker CA, HQ's root key and the claim
        identity filled in; they write store, terminal and code
    posterm-hq enroll serve --db URL --ca CA_DIR --host broker --tls-ca chain.pem \
        --cert hq.crt --key hq.key --register /etc/posterm/hq/terminals \
        --static /etc/mosquitto/posterm/acl.static --acl /etc/mosquitto/posterm/acl \
        --broker-pid /run/mosquitto/mosquitto.pid
        answers boxes redeeming their code: signs, registers, reloads the broker (until SIGTERM)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from terminal.hq import acl
from terminal.hq.broker_acl import BrokerAcl
from terminal.hq.database import open_hq_database
from terminal.hq.enrollment import codes
from terminal.hq.enrollment.service import EnrollmentService
from terminal.hq.models import EnrollmentCode
from terminal.hq.mqtt_options import add_broker_options, mqtt_config
from terminal.hq.pki import authority
from terminal.hq.until_signal import run_until_signal
from terminal.protocol.topics import Topics

TTL = re.compile(r"(\d+)([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def ttl(text: str) -> timedelta:
    match = TTL.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: give minutes, hours or days: 30m, 24h, 3d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="a one-time code for one terminal")
    issue.add_argument("terminal", metavar="STORE/TERMINAL")
    issue.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    issue.add_argument("--ttl", type=ttl, default=codes.DEFAULT_TTL,
                       help="how long the code is valid: 30m, 24h (default), 3d; at most 14d")
    template = actions.add_parser("template", help="the provisioning file for technicians")
    template.add_argument("--ca", type=Path, required=True, help="the CA directory (ca init)")
    template.add_argument("--claim", type=Path, required=True,
                          help="the claim identity's PREFIX (ca identity claim -o PREFIX)")
    template.add_argument("--root-pub", type=Path, required=True, help="keygen's root.pub")
    template.add_argument("--host", required=True, help="the broker's host name")
    template.add_argument("--port", type=int, default=8883)
    template.add_argument("--card-key-file", type=Path,
                          help="the chain's card key (as the console's --card-key-file): the "
                               "box hashes card numbers with it; without it, none is written")
    serve = actions.add_parser("serve", help="answer boxes redeeming their codes")
    serve.add_argument("--db", required=True)
    serve.add_argument("--ca", type=Path, required=True, help="the CA directory (ca init)")
    add_broker_options(serve, "posterm-hq-enroll", ca="--tls-ca")
    serve.add_argument("--register", type=Path, default=acl.REGISTER)
    serve.add_argument("--static", type=Path, default=acl.STATIC)
    serve.add_argument("--acl", type=Path, default=acl.OUTPUT, help="the broker's acl_file")
    serve.add_argument("--broker-pid", type=Path, help="the broker's PID file, to reload it")


def run(args: argparse.Namespace) -> int:
    return {"issue": _issue, "template": _template, "serve": _serve}[args.action](args)


TEMPLATE = """\
# posterm provisioning file (HQ's template): write store, terminal_id and the code HQ gave you,
# save it as posterm-provision.toml on the card's boot partition and power the box on.

[terminal]
store = ""          # e.g. S001
terminal_id = ""    # e.g. T01

[broker]
host = "{host}"
port = {port}
ca = '''
{ca}'''

[hq]
root_public_key = '''
{root}'''
{card_key}
[enroll]
code = ""           # from `posterm-hq enroll issue STORE/TERMINAL`, once, before it expires
claim_certificate = '''
{claim_cert}'''
claim_private_key = '''
{claim_key}'''
"""


def _template(args: argparse.Namespace) -> int:
    def pem(path: Path) -> str:
        return path.read_text(encoding="ascii")

    try:
        card_key = ""
        if args.card_key_file is not None:
            card_key = f"card_key = '{args.card_key_file.read_text(encoding='ascii').strip()}'\n"
        text = TEMPLATE.format(card_key=card_key,
            host=args.host, port=args.port, ca=pem(args.ca / "chain.pem"), root=pem(args.root_pub),
            claim_cert=pem(args.claim.with_name(args.claim.name + ".crt")),
            claim_key=pem(args.claim.with_name(args.claim.name + ".key")))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"posterm-hq enroll template: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _issue(args: argparse.Namespace) -> int:
    try:
        terminal = acl.parse_identity(args.terminal, "STORE/TERMINAL")
        db = open_hq_database(args.db)
        with db.bind_ctx([EnrollmentCode]), db.atomic():
            issued = codes.issue(terminal, datetime.now(UTC).replace(microsecond=0), args.ttl)
        db.close()
    except (acl.AclError, ValueError) as exc:
        print(f"posterm-hq enroll issue: refused: {exc}", file=sys.stderr)
        return 1
    print(issued.code)
    print(f"for {terminal.identity}, valid until {issued.expires.isoformat()} (once): write it "
          "as [enroll] code in the box's posterm-provision.toml", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        ca = authority.load(args.ca)
    except authority.CaError as exc:
        print(f"posterm-hq enroll serve: {exc}", file=sys.stderr)
        return 1
    config = mqtt_config(args, backoff_max=10.0, ca=args.tls_ca)
    service = EnrollmentService(open_hq_database(args.db), ca, config,
                                BrokerAcl(args.register, args.static, args.acl, args.broker_pid),
                                Topics(args.topic_root))
    asyncio.run(run_until_signal(service))
    return 0
