"""Member care's sender against the machine's own limit: the same messages POSTed to the same
loopback gateway by bare ``urllib``, one after the other, with nothing else.

HQ's SQLite database in a temporary directory gets N members imported with points expiring in
ten days (`MemberOps.import_members`), each agreeing to SMS; an `expiring` campaign is queued
(N messages in the outbox), then the sender (`Dispatcher.run`, as `posterm-hq campaign send`
runs it) delivers them to the test gateway (tests/support/care_servers). Each message costs the
sender one HQ write transaction (an fsync on SQLite: the last one's outcome and this one's claim)
and its checks (erasure, consent, cap); the raw figure is the HTTP round trip alone.

Run: ``.venv/bin/python bench/bench_care.py [--members N]`` (default 500).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terminal.hq.bundles import read_toml  # noqa: E402
from terminal.hq.care.channels import SmsGateway  # noqa: E402
from terminal.hq.care.config import CareConfig, PolicySection, SmsSection  # noqa: E402
from terminal.hq.care.dispatch import Dispatcher  # noqa: E402
from terminal.hq.care.service import Care  # noqa: E402
from terminal.hq.console.roles import Principal  # noqa: E402
from terminal.hq.database import open_hq_database  # noqa: E402
from terminal.hq.member_ops.service import MemberOps  # noqa: E402
from terminal.loyalty.rules import Rules  # noqa: E402
from terminal.loyalty.store.accounts import member_ref  # noqa: E402
from terminal.loyalty.store.binding import bound_call  # noqa: E402
from terminal.loyalty.store.models import Member  # noqa: E402
from tests.support.care_servers import gateway  # noqa: E402

KEY = b"bench-card-key-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=500)
    args = parser.parse_args()
    rules = Rules.from_mapping(read_toml(ROOT.parent / "shared" / "examples" / "rules.toml"))
    now = datetime.now(UTC)
    expires = (now + timedelta(days=10)).date().isoformat()
    rows = ["card,tier,points,name,phone,expires"] + [
        f"9{n:09d},member,{100 + n},会员{n},139{n:08d},{expires}" for n in range(args.members)]
    with tempfile.TemporaryDirectory() as tmp:
        db = open_hq_database(str(Path(tmp) / "hq.db"))
        MemberOps(db, rules, KEY).import_members("\n".join(rows), actor="bench", reason="bench")
        care = Care(db, rules, KEY)
        who = Principal("bench", "marketing")
        ids = bound_call(db, lambda: {m.card_hash: m.id for m in Member.select()})
        for n in range(args.members):
            member = ids[member_ref(KEY, f"9{n:09d}").hash]
            care.consent(who, member, "sms", True, f"139{n:08d}")
        campaign = care.create(who, "bench", "expiring", 30, "sms")
        queued = care.queue(who, campaign)
        with gateway() as server:
            config = replace(CareConfig(), sms=SmsSection(url=server.url, api_key="k"),
                             policy=PolicySection(quiet_start="00:00", quiet_end="00:00",
                                                  cap_messages=100))
            sender = Dispatcher(db, rules, config, {"sms": SmsGateway(config.sms)},
                                lambda: datetime.now(UTC))
            start = time.perf_counter()
            run = sender.run()
            took = time.perf_counter() - start
            start = time.perf_counter()
            for n in range(args.members):
                body = json.dumps({"id": f"raw-{n}", "to": f"139{n:08d}",
                                   "text": "【会员中心】会员，您有100积分将于2026-12-20到期。"},
                                  ensure_ascii=False).encode()
                request = urllib.request.Request(server.url, data=body, method="POST", headers={
                    "Content-Type": "application/json", "Idempotency-Key": f"raw-{n}"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
            raw = time.perf_counter() - start
            assert len(server.delivered) == 2 * args.members, len(server.delivered)
        db.close()
    assert queued["pending"] == args.members and run.sent == args.members, (queued, run)
    print(f"{args.members} messages: sender {args.members / took:,.0f}/s "
          f"({took / args.members * 1000:.2f} ms each), raw urllib POSTs "
          f"{args.members / raw:,.0f}/s ({raw / args.members * 1000:.2f} ms each): "
          f"ratio {raw / took:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
