"""`posterm-hq campaign ACTION ...`: member care from the command line.

    posterm-hq campaign create --db URL --name "十二月生日" --segment birthday [--days 7]
        --channel sms [--bonus 100] [--store S001] [--rules rules.toml]
    posterm-hq campaign preview ID --db URL [--rules rules.toml] [--care-config care.toml]
    posterm-hq campaign send [ID] --db URL --care-config care.toml [--rules rules.toml]
        [--card-key-file card.key]   # queues a draft (its bonus needs the card key), then sends
    posterm-hq campaign status ID --db URL [--json]
    posterm-hq campaign consent CARD --channel sms --yes --address 13800000001 --db URL
        --card-key-file card.key [--source till]   # or --no: the opt-out, at once

``send`` without an ID sends what is due of every queued campaign (a timer can run it); in quiet
hours it sends nothing and says until when. Each prints JSON; a refusal prints its reason on
stderr, exits 1 and changes nothing. The acting account is ``cli:`` and the system user, in the
audit log.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from pathlib import Path
from typing import Any

from terminal.core.configfile import ConfigError
from terminal.daemon.sim.demo import demo_rules
from terminal.hq.bundles import read_toml
from terminal.hq.care import config as care_config
from terminal.hq.care.campaigns import CampaignError
from terminal.hq.care.channels import Channel, SmsGateway, SmtpMail
from terminal.hq.care.consent import ConsentError
from terminal.hq.care.dispatch import ALL_MODELS, Dispatcher, SenderBusy, one_sender
from terminal.hq.care.models import CHANNELS
from terminal.hq.care.segments import SEGMENTS
from terminal.hq.care.service import Care
from terminal.hq.console.roles import Principal
from terminal.hq.database import open_hq_database
from terminal.hq.member_ops.errors import MemberOpError
from terminal.loyalty.rules import Rules
from terminal.loyalty.store.accounts import member_ref
from terminal.loyalty.store.binding import bound
from terminal.loyalty.store.models import Member


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rules", type=Path, default=None,
                        help="the chain's rules TOML (default: the example rules)")
    parser.add_argument("--card-key-file", type=Path, default=None,
                        help="HQ's card key: needed for a bonus and to name a member by card")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="a draft campaign to a segment")
    create.add_argument("--name", required=True)
    create.add_argument("--segment", required=True, choices=list(SEGMENTS))
    create.add_argument("--days", type=int, default=None,
                        help="birthdays within / points expiring within / dormant for N days")
    create.add_argument("--channel", required=True, choices=list(CHANNELS))
    create.add_argument("--bonus", type=int, default=0, help="points granted to each member")
    create.add_argument("--store", default=None,
                        help="only the members at home in this store (registered there, "
                        "unless HQ moved them); default: chain-wide")
    preview = sub.add_parser("preview", help="how many members the segment holds and reaches, "
                             "and a sample member's message")
    preview.add_argument("id", type=int)
    preview.add_argument("--care-config", type=Path, default=None,
                         help="the templates to fill (default: the built-in ones)")
    send = sub.add_parser("send", help="queue a draft campaign and send what is due")
    send.add_argument("id", type=int, nargs="?")
    send.add_argument("--care-config", type=Path, required=True,
                      help="channels, quiet hours, cap and templates (TOML)")
    status = sub.add_parser("status", help="a campaign and each message's delivery")
    status.add_argument("id", type=int)
    status.add_argument("--json", action="store_true")
    agree = sub.add_parser("consent", help="record a member's opt-in or opt-out")
    agree.add_argument("card", help="the member's card number")
    agree.add_argument("--channel", required=True, choices=list(CHANNELS))
    answer = agree.add_mutually_exclusive_group(required=True)
    answer.add_argument("--yes", dest="granted", action="store_true")
    answer.add_argument("--no", dest="granted", action="store_false")
    agree.add_argument("--address", help="the mobile number or email address (with --yes)")
    agree.add_argument("--source", choices=("cli", "till"), default="cli",
                       help="till: the member agreed at a till (recorded from its form)")
    for action in (create, preview, send, status, agree):
        _common(action)


def _channels(config: care_config.CareConfig) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    if config.sms.url:
        channels["sms"] = SmsGateway(config.sms)
    if config.email.host:
        channels["email"] = SmtpMail(config.email)
    return channels


def _send(care: Care, who: Principal, args: argparse.Namespace) -> dict[str, Any]:
    config = care_config.load(args.care_config)
    channels = _channels(config)
    result: dict[str, Any] = {}
    if args.id is not None:
        campaign = care.campaign(args.id)  # its channel and state, not its messages
        if campaign["channel"] not in channels:
            raise ValueError(f"campaign {args.id} goes by {campaign['channel']}: "
                             f"{args.care_config} configures no [{campaign['channel']}]")
        if campaign["state"] == "draft":
            result["queued"] = care.queue(who, args.id)
        elif campaign["bonus_points"] and (granted := care.grant(who, args.id)):
            # a grant cut off goes on first; a campaign without a bonus takes no write
            result["bonus_ops"] = granted
    dispatcher = Dispatcher(care.db, care.rules, config, channels, care.clock)
    with one_sender(care.db):
        result["run"] = dispatcher.run(args.id).as_dict()
    return result


def _consent(care: Care, who: Principal, args: argparse.Namespace) -> dict[str, Any]:
    if care.card_key is None:
        raise ConsentError("naming a member by card needs --card-key-file")
    ref = member_ref(care.card_key, args.card)
    with bound(care.db, ALL_MODELS):
        member = Member.get_or_none(Member.card_hash == ref.hash)
    if member is None:
        raise ConsentError(f"card ****{ref.last4} belongs to no member")
    care.consent(who, member.id, args.channel, args.granted, args.address, args.source)
    return {"member": member.id, "channel": args.channel, "granted": args.granted}


def _act(care: Care, who: Principal, args: argparse.Namespace) -> Any:
    if args.action == "create":
        return {"id": care.create(who, args.name, args.segment, args.days, args.channel,
                                  args.bonus, args.store)}
    if args.action == "preview":
        care.config = care_config.load(args.care_config)
        return care.preview(args.id, who)
    if args.action == "send":
        return _send(care, who, args)
    if args.action == "status":
        return care.status(args.id)
    return _consent(care, who, args)


def _print_status(data: dict[str, Any]) -> None:
    print(f"#{data['id']} {data['name']} ({data['segment']}, {data['channel']}, "
          f"{data['state']}): " + ", ".join(f"{k} {v}" for k, v in data["messages"].items()))
    for row in data["message_list"]:
        print(f"  {row['id']}  {row['member'][:8]}  ****{row['card_last4']}  {row['state']:<8}"
              f" {row['why']}")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    who = Principal(f"cli:{getpass.getuser()}", "cli", via="cli")
    try:
        rules = Rules.from_mapping(read_toml(args.rules or demo_rules()))
        key = args.card_key_file.read_bytes().strip() if args.card_key_file else None
        db = open_hq_database(args.db, migrate=False)
    except (ValueError, OSError) as exc:
        print(f"campaign {args.action}: {exc}", file=sys.stderr)
        return 1
    try:
        data = _act(Care(db, rules, key), who, args)
    except (CampaignError, ConsentError, ConfigError, MemberOpError, SenderBusy,
            ValueError) as exc:
        print(f"campaign {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if args.action == "status" and not args.json:
        _print_status(data)
    else:
        print(json.dumps(data, ensure_ascii=False, sort_keys=True))
    return 0
