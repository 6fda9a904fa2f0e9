"""Member care's sender against the machine's own limit: the same messages POSTed to the same
loopback gateway by bare ``urllib``, one after the other, with nothing else.

HQ's SQLite database in a temporary directory gets N members imported with points expiring in
ten days (`MemberOps.import_members`), each agreeing to SMS; an `expiring` campaign is queued
(N messages in the outbox), then the sender (`Dispatcher.run`, as `posterm-hq campaign send`
runs it) delivers them to the test gateway (tests/support/care_servers). Each message costs the
sender one HQ write transaction (an fsync on SQLite: the last one's outcome and this one's claim)
and its checks (erasure, consent, cap); the raw figure is the HTTP round trip alone.

Then (b) queueing a campaign at chain scale on PostgreSQL, against the database's own limit.
A private PostgreSQL server on a free loopback port (fsync off, for both sides alike) gets HQ's
schema from its migrations and ``--queue-members`` members written by the server itself
(``INSERT ... SELECT generate_series``): each with a home store (S001-S010), a lot of 100 points
expiring in 10 days, and nine in ten of them an SMS opt-in with a number. An ``expiring``
campaign is queued as ``posterm-hq campaign send`` queues it (``Care.queue``: the roll-ups'
catch-up, the segment, every member's consent, one message per member with its id and fields,
in one HQ write transaction); the limit is a bare COPY of the very same outbox rows into a twin
of ``care_message`` (same columns and indexes) in one transaction, measured in the same run. The
segment alone and the consent look-up alone are timed too, to say where the time goes.

(c) With ``--bonus POINTS``, the same segment is then queued again by a campaign granting that
bonus to every member (``Care.queue``, then ``Care.grant``: a chunk of ``GRANT_CHUNK`` members
a transaction, each member's signed HQ adjustment, its operation, ledger entry, lot, audit rows
and card state, made set-based: terminal/hq/member_ops/bulk.py), timed against (b)'s queueing;
the limit: a bare COPY of the very rows the grant wrote (entries, lots, audit rows, member
operations, card states, meta rows) into twins of their tables in one transaction, measured in
the same run. ``--one-by-one`` grants it one ``MemberOps.adjust`` a member instead (before
session 11's set-based grant: about 39 statements a member).

Run: ``.venv/bin/python bench/bench_care.py [--members N] [--queue-members M] [--bonus P]
[--one-by-one]``
(defaults 500, 20,000 and no bonus; ``--queue-members 100000`` for the chain-scale figure, a
few minutes; 0 skips (b), ``--members 0`` skips (a)).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from terminal.loyalty.store.binding import bound, bound_call  # noqa: E402
from terminal.loyalty.store.models import Member  # noqa: E402
from tests.support.care_servers import gateway  # noqa: E402

KEY = b"bench-card-key-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=500, help="(a) the sender's messages")
    parser.add_argument("--queue-members", type=int, default=20_000,
                        help="(b) the segment queued on PostgreSQL")
    parser.add_argument("--bonus", type=int, default=0, metavar="POINTS",
                        help="(c) then the same segment queued again with this bonus")
    parser.add_argument("--one-by-one", action="store_true",
                        help="(c) granted by MemberOps.adjust, one member at a time")
    args = parser.parse_args()
    if args.one_by_one:
        import functools

        from terminal.hq.care import campaigns

        campaigns.grant = functools.partial(campaigns.grant, one_by_one=True)  # type: ignore[assignment]
    if args.members:
        sender(args.members)
    if args.queue_members:
        queueing(args.queue_members, args.bonus)
    return 0


def sender(members: int) -> None:
    """(a) The sender on SQLite against bare urllib POSTs."""
    rules = Rules.from_mapping(read_toml(ROOT.parent / "shared" / "examples" / "rules.toml"))
    now = datetime.now(UTC)
    expires = (now + timedelta(days=10)).date().isoformat()
    rows = ["card,tier,points,name,phone,expires"] + [
        f"9{n:09d},member,{100 + n},会员{n},139{n:08d},{expires}" for n in range(members)]
    with tempfile.TemporaryDirectory() as tmp:
        db = open_hq_database(str(Path(tmp) / "hq.db"))
        MemberOps(db, rules, KEY).import_members("\n".join(rows), actor="bench", reason="bench")
        care = Care(db, rules, KEY)
        who = Principal("bench", "marketing")
        ids = bound_call(db, lambda: {m.card_hash: m.id for m in Member.select()})
        for n in range(members):
            member = ids[member_ref(KEY, f"9{n:09d}").hash]
            care.consent(who, member, "sms", True, f"139{n:08d}")
        campaign = care.create(who, "bench", "expiring", 30, "sms")
        queued = care.queue(who, campaign)
        with gateway() as server:
            config = replace(CareConfig(), sms=SmsSection(url=server.url, api_key="k"),
                             policy=PolicySection(quiet_start="00:00", quiet_end="00:00",
                                                  cap_messages=100))
            dispatcher = Dispatcher(db, rules, config, {"sms": SmsGateway(config.sms)},
                                    lambda: datetime.now(UTC))
            start = time.perf_counter()
            run = dispatcher.run()
            took = time.perf_counter() - start
            start = time.perf_counter()
            for n in range(members):
                body = json.dumps({"id": f"raw-{n}", "to": f"139{n:08d}",
                                   "text": "【会员中心】会员，您有100积分将于2026-12-20到期。"},
                                  ensure_ascii=False).encode()
                request = urllib.request.Request(server.url, data=body, method="POST", headers={
                    "Content-Type": "application/json", "Idempotency-Key": f"raw-{n}"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
            raw = time.perf_counter() - start
            assert len(server.delivered) == 2 * members, len(server.delivered)
        db.close()
    assert queued["pending"] == members and run.sent == members, (queued, run)
    print(f"(a) {members} messages: sender {members / took:,.0f}/s "
          f"({took / members * 1000:.2f} ms each), raw urllib POSTs "
          f"{members / raw:,.0f}/s ({raw / members * 1000:.2f} ms each): "
          f"ratio {raw / took:.2f}")



NOW = datetime(2026, 12, 10, 3, 0, tzinfo=UTC)  # HQ's clock for (b): 11:00 in Shanghai
_NOW_US = int(NOW.timestamp()) * 1_000_000
_DAY_US = 86_400_000_000


def chain(members: int) -> list[tuple[str, str]]:
    """(b)'s chain as (table, INSERT ... SELECT) steps (``mod()``: psycopg reads ``%``)."""
    member = "'m' || lpad(i::text, 9, '0')"
    every = f"FROM generate_series(1::bigint, {members}) AS i"
    agreeing = f"{every} WHERE mod(i, 10) <> 0"
    return [
        ("member", f"""INSERT INTO member (id, card_hash, card_last4, name, phone_hash,
            phone_last4, birthday, referrer_id, referral_paid, registered_us, tier,
            tier_reviewed_us, balance, debt)
            SELECT {member}, md5('card' || i) || md5('c' || i), right(i::text, 4),
                   '会员' || i, md5('phone' || i) || md5('p' || i), right(i::text, 4), NULL,
                   NULL, false, {_NOW_US - 300 * _DAY_US}, 'member', NULL, 100, 0 {every}"""),
        ("member_home", f"""INSERT INTO member_home (member, store, since_us)
            SELECT {member}, 'S' || lpad((1 + mod(i, 10))::text, 3, '0'),
                   {_NOW_US - 300 * _DAY_US} {every}"""),
        ("ledger_entry", f"""INSERT INTO ledger_entry (id, seq, member_id, kind, points,
            debt_delta, sale_id, reverses, reason, operator, wall_us, trusted)
            SELECT 'e' || i, i, {member}, 'bonus', 100, 0, NULL, NULL, 'registration', '',
                   {_NOW_US - 355 * _DAY_US}, true {every}"""),
        ("lot", f"""INSERT INTO lot (id, member_id, earned_us, expires_us, points, remaining,
            dated_trusted)
            SELECT 'e' || i, {member}, {_NOW_US - 355 * _DAY_US},
                   {_NOW_US + 10 * _DAY_US} + mod(i, 86400) * 1000000, 100, 100, true
            {every}"""),
        ("care_contact", f"""INSERT INTO care_contact (member, phone, email, updated_us)
            SELECT {member}, '139' || lpad(i::text, 8, '0'), NULL, {_NOW_US - _DAY_US}
            {agreeing}"""),
        ("care_consent", f"""INSERT INTO care_consent (member, channel, granted, source,
            actor, at_us, store, terminal)
            SELECT {member}, 'sms', true, 'till', 'cashier', {_NOW_US - _DAY_US},
                   'S' || lpad((1 + mod(i, 10))::text, 3, '0'), 'T01' {agreeing}"""),
    ]


def queueing(members: int, bonus: int = 0) -> None:
    """(b) ``Care.queue`` of an ``expiring`` campaign to ``members`` on PostgreSQL, against a
    bare COPY of the same outbox rows; (c) with ``bonus``, a second campaign to the same
    segment granting it (one signed HQ member operation a member, in the queue's transaction),
    against (b)'s queueing of the same messages without one."""
    from bench.bench_console import bulk_load
    from terminal.hq.care import consent, segments
    from terminal.hq.care.campaigns import MESSAGE_COLUMNS
    from terminal.hq.care.dispatch import ALL_MODELS
    from terminal.hq.database import snapshot
    from tests.support.postgres import Postgres

    rules = Rules.from_mapping(read_toml(ROOT.parent / "shared" / "examples" / "rules.toml"))
    server = Postgres()
    server.start()
    try:
        db = open_hq_database(server.dsn)
        version = db.execute_sql("SHOW server_version").fetchone()[0]
        print(f"(b) PostgreSQL {version} on port {server.port}: {members:,} members, "
              "each a lot expiring in 10 days, 9 in 10 agreeing to SMS", flush=True)
        bulk_load(db, chain(members))
        db.execute_sql("VACUUM ANALYZE")
        care = Care(db, rules, KEY, clock=lambda: NOW)
        who = Principal("bench", "marketing")

        def alone(work: Callable[[], Any]) -> tuple[float, Any]:
            with bound(db, ALL_MODELS), snapshot(db):
                started = time.perf_counter()
                found = work()
                return time.perf_counter() - started, found

        segment_s, targets = alone(lambda: segments.select(rules, "expiring", 30, NOW))
        consent_s, reach = alone(lambda: consent.addresses([t.member for t in targets], "sms"))
        assert len(targets) == members and len(reach) == members - members // 10
        campaign = care.create(who, "bench", "expiring", 30, "sms")
        started = time.perf_counter()
        queued = care.queue(who, campaign)
        took = time.perf_counter() - started
        assert queued == {"members": members, "pending": len(reach),
                          "skipped": members - len(reach), "bonus_ops": 0}, queued
        columns = ", ".join(MESSAGE_COLUMNS)
        rows = db.execute_sql(f"SELECT {columns} FROM care_message WHERE campaign = %s",
                              (campaign,)).fetchall()
        db.execute_sql("CREATE TABLE raw_message (LIKE care_message INCLUDING ALL)")
        started = time.perf_counter()
        with db.atomic(), db.cursor().copy(f"COPY raw_message ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw = time.perf_counter() - started
        copied = db.execute_sql("SELECT count(*) FROM raw_message").fetchone()[0]
        assert copied == members, copied
        if bonus:
            print(f"(c) queueing the same segment with a bonus of {bonus} points ...", flush=True)
            # The chain was written by the server, not by HQ's writers: number the bonus
            # entries above it, as migration 13 starts the sequence over an existing chain.
            from terminal.hq.database import SEQ_BLOCK
            db.execute_sql(f"SELECT setval('hq_seq_block', {members // SEQ_BLOCK + 1}, false)")
            granting = care.create(who, "bench bonus", "expiring", 30, "sms", bonus)
            before = {table: db.execute_sql(f"SELECT COALESCE(max(seq), 0) FROM {table}"
                                            ).fetchone()[0]
                      for table in ("ledger_entry", "audit", "member_op")}
            started = time.perf_counter()
            granted = care.queue(who, granting)
            bonus_s = time.perf_counter() - started
            assert granted["bonus_ops"] == members, granted
            ops = db.execute_sql("SELECT count(*), count(DISTINCT member) FROM member_op "
                                 "WHERE kind = 'adjust'").fetchone()
            states = db.execute_sql("SELECT count(*) FROM card_state").fetchone()[0]
            copy_s, copied_rows = bare_copy(db, before)
        db.close()
    finally:
        server.stop()
    print(f"(b) queueing {members:,} messages: Care.queue {took:.2f} s "
          f"({members / took:,.0f} messages/s; the segment alone {segment_s:.2f} s, its "
          f"consent look-up alone {consent_s:.2f} s), a bare COPY of the same rows "
          f"{raw:.2f} s ({members / raw:,.0f}/s): ratio {raw / took:.2f}")
    if bonus:
        print(f"(c) queueing {members:,} messages with a bonus of {bonus} points: Care.queue "
              f"{bonus_s:.2f} s ({members / bonus_s:,.0f} members/s, "
              f"{bonus_s / members * 1000:.2f} ms a member; {ops[0]:,} member operations for "
              f"{ops[1]:,} members, {states:,} card states to publish) against {took:.2f} s "
              f"without the bonus: {bonus_s / took:.1f} times as long")
        print(f"(c) a bare COPY of the {copied_rows:,} rows the grant wrote {copy_s:.2f} s: "
              f"ratio {copy_s / bonus_s:.2f} (the grant includes the queueing's "
              f"{took:.2f} s)")


def bare_copy(db: Any, before: dict[str, int]) -> tuple[float, int]:
    """The rows a bonus grant wrote, read back, then COPYed into twins of their tables (same
    columns and indexes, no triggers) in one transaction: the database's limit for them."""
    wheres = {
        "ledger_entry": f"seq > {before['ledger_entry']}",
        "lot": f"id IN (SELECT id FROM ledger_entry WHERE seq > {before['ledger_entry']})",
        "audit": f"seq > {before['audit']}",
        "member_op": f"seq > {before['member_op']}",
        "card_state": f"version > {before['member_op']}",
        "meta": "starts_with(key, 'hq_tier:')",
    }
    tables = {}
    for table, where in wheres.items():
        cursor = db.execute_sql(f"SELECT * FROM {table} WHERE {where}")
        columns = [column[0] for column in cursor.description]
        tables[table] = (columns, cursor.fetchall())
        db.execute_sql(f"CREATE TABLE raw_{table} (LIKE {table} INCLUDING ALL)")
    started = time.perf_counter()
    with db.atomic():
        for table, (columns, rows) in tables.items():
            with db.cursor().copy(f"COPY raw_{table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return time.perf_counter() - started, sum(len(rows) for _, rows in tables.values())


if __name__ == "__main__":
    sys.exit(main())
