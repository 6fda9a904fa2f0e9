"""The `posterm-hq` command line: one sub-command per module, imported only when chosen.

Each module defines ``configure(parser)`` and ``run(args) -> int`` (the same contract as
``posterm``, dispatched by ``terminal.core.subcommands.dispatch``).
"""

from __future__ import annotations

import sys

from terminal.core.subcommands import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "keygen": ("terminal.hq.keygen", "make the root key, or a new signing key and its delegation"),
    "bundle": ("terminal.hq.bundles", "build (sign) or push a rules/catalogue/settings bundle"),
    "collect": ("terminal.hq.collect", "apply terminals' events to the chain ledger, answer "
                "balance and hold requests"),
    "fleet": ("terminal.hq.fleet", "every terminal's last status"),
    "acl": ("terminal.hq.acl", "write the broker ACL: the static part and each registered "
            "terminal's store bundles"),
    "ca": ("terminal.hq.pki.cli", "the certificate authority: init, sign terminals' requests, "
           "revoke, write the broker's CRL"),
    "enroll": ("terminal.hq.enrollment.cli", "one-visit enrollment: issue a terminal's one-time "
               "code, serve the boxes redeeming theirs"),
    "release": ("terminal.hq.release", "sign a wheelhouse as a release (release.json) with the "
                "delegated signing key"),
    "os": ("terminal.hq.os_release", "announce an operating-system (RAUC) bundle to every box"),
    "report": ("terminal.hq.report", "points liability and activity per store and chain-wide"),
    "rollup": ("terminal.hq.rollup", "keep the reports' roll-ups current (once, or every N "
               "seconds beside the collectors)"),
    "review": ("terminal.hq.review", "the events HQ refused or flagged for review, newest first"),
    "receipt": ("terminal.hq.receipts", "a till's refund or void by the number on its receipt"),
    "expire": ("terminal.hq.expire", "run the chain-wide expiry sweep"),
    "db": ("terminal.hq.db", "upgrade HQ's database to this release's schema, or show its "
           "version"),
    "demo": ("terminal.hq.demo", "fill an empty HQ database with a demo chain: three stores, "
             "members and three months of sales"),
    "local-chain": ("terminal.hq.localchain.run", "the whole chain on this machine: broker, "
                    "HQ with demo data, collector, console and a simulated till"),
    "member": ("terminal.hq.member_ops.cli", "member operations: adjust, freeze, unfreeze, "
               "replace a lost card, merge, edit, erase, import from CSV"),
    "campaign": ("terminal.hq.care.cli", "member care: campaigns to segments by SMS and email, "
                 "consent, the sender"),
    "console": ("terminal.hq.console.cli", "the HQ web console and its JSON API"),
    "rules": ("terminal.hq.rules_studio.cli", "the rules studio: validate, lint and diff a "
              "candidate rule set against the rules in force"),
    "user": ("terminal.hq.console.user_cli", "console accounts and API tokens"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch(COMMANDS, "posterm-hq", argv)


if __name__ == "__main__":
    sys.exit(main())
