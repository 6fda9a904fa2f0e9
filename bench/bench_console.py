"""The HQ console's pages at chain scale on PostgreSQL: each page's server time, p50 and p95.

A private PostgreSQL server (fsync off: set-up, not the thing measured) gets HQ's schema as the
collectors and the console create it, then a chain written by server-side ``INSERT ... SELECT``
(default a million members, ten million ledger entries, five million sales and applied events
with their sequence spans, a lot and a home store per member, 300 terminals). The pages are
requested through the real application in this process (Starlette's test client: routing,
session, CSRF cookie, roles, the queries, the audit row each read writes, the templates), so
the time is the server's, without a network. Target: p95 under 300 ms for every page.

Run: ``.venv/bin/python bench/bench_console.py [--members N] [--entries-per-member K]
[--requests R]``. A million members take a few minutes and a few GB in a temporary directory.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from terminal.hq.console import accounts  # noqa: E402
from terminal.hq.console.app import build  # noqa: E402
from terminal.hq.console.db import ConsoleDb  # noqa: E402
from terminal.loyalty.cards import card_hash, phone_hash  # noqa: E402
from terminal.loyalty.rules import load_rules  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.shared import EXAMPLES  # noqa: E402

KEY = b"bench-card-key-0123456789abcdef"
PASSWORD = "bench password 123"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红梅鑫波斌宇浩凯"
SAMPLED = 200  # members whose card and phone hashes are real (the searches look them up)
T0_US = 1_760_000_000_000_000  # 2025-10-09: the chain's history starts here
STEP_US = 60_000_000


def card(i: int) -> str:
    return f"7{i:09d}"


def phone(i: int) -> str:
    return f"139{i:08d}"


def bulk_load(db: Any, steps: list[tuple[str, str]]) -> None:
    """Run each (table, INSERT ... SELECT) the usual way of a bulk load: secondary indexes
    dropped and built after, foreign-key triggers off for the session (the generated rows are
    consistent by construction); each step's time printed."""
    sql = db.execute_sql
    tables = [table for table, _ in steps]
    indexes = sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                  "AND tablename = ANY(%s) AND indexname NOT LIKE %s",
                  (tables, "%pkey")).fetchall()
    for name, _ in indexes:
        sql(f'DROP INDEX "{name}"')
    sql("SET session_replication_role = replica")
    for table, statement in steps:
        started = time.perf_counter()
        sql(statement)
        print(f"  {table:<14} {time.perf_counter() - started:6.1f} s", flush=True)
    sql("SET session_replication_role = DEFAULT")
    started = time.perf_counter()
    for _, definition in indexes:
        sql(definition)
    print(f"  {'indexes':<14} {time.perf_counter() - started:6.1f} s", flush=True)


def populate(db: Any, members: int, per_member: int) -> None:
    """The chain, written by the server itself (``mod()``, not ``%``: psycopg 3 would read a
    ``%`` in the text as a placeholder). Member ``i`` (1-based) has entries
    ``(i-1)*K+1 .. i*K``: a registration bonus, then earns and now and then a redemption, one
    sale and one applied event per two entries (the event's span names them)."""
    k = per_member
    sql = db.execute_sql
    given = f"'{GIVEN}'::text"
    names = (f"substr('{SURNAMES}'::text, (1 + mod(i, {len(SURNAMES)}))::int, 1) || "
             f"substr({given}, (1 + mod(i / 7, {len(GIVEN)}))::int, 1) || "
             f"CASE WHEN mod(i, 3) = 0 THEN '' "
             f"ELSE substr({given}, (1 + mod(i / 11, {len(GIVEN)}))::int, 1) END")
    steps = [
        ("member", f"""INSERT INTO member (id, card_hash, card_last4, name, phone_hash,
            phone_last4, birthday, referrer_id, referral_paid, registered_us, tier,
            tier_reviewed_us, balance, debt)
            SELECT 'm' || lpad(i::text, 9, '0'), md5('card' || i) || md5('c' || i),
                   right('{card(0)[:-9]}' || lpad(i::text, 9, '0'), 4), {names},
                   md5('phone' || i) || md5('p' || i), right(i::text, 4), NULL, NULL, false,
                   {T0_US} + i * 1000, 'member', NULL, {(k - 1) * 10}, 0
            FROM generate_series(1::bigint, {members}) AS i"""),
        ("member_home", f"""INSERT INTO member_home (member, store, since_us)
            SELECT 'm' || lpad(i::text, 9, '0'), 'S' || lpad((1 + mod(i, 100))::text, 3, '0'),
                   {T0_US} + i * 1000 FROM generate_series(1::bigint, {members}) AS i"""),
        ("sale", f"""INSERT INTO sale (id, seq, member_id, wall_us, trusted, tender, list_fen,
            discount_fen, deduction_fen, paid_fen, points_earned, points_redeemed, earn_entry,
            redeem_entry, tier, operator, detail)
            SELECT 's' || s, s * 2, 'm' || lpad((1 + (s * 2 - 1) / {k})::text, 9, '0'),
                   {T0_US} + s * 2 * {STEP_US}, true, 'cash', 10000, 0, 0, 10000, 10, 0,
                   NULL, NULL, 'member', '收银员' || mod(s, 50), '{{}}'
            FROM generate_series(1::bigint, {members * k // 2}) AS s"""),
        ("ledger_entry", f"""INSERT INTO ledger_entry (id, seq, member_id, kind, points,
            debt_delta, sale_id, reverses, reason, operator, wall_us, trusted)
            SELECT 'e' || n, n, 'm' || lpad((1 + (n - 1) / {k})::text, 9, '0'),
                   CASE WHEN mod(n - 1, {k}) = 0 THEN 'bonus' ELSE 'earn' END,
                   CASE WHEN mod(n - 1, {k}) = 0 THEN 0 ELSE 10 END, 0,
                   CASE WHEN mod(n - 1, {k}) = 0 THEN NULL ELSE 's' || ((n + 1) / 2) END,
                   NULL, CASE WHEN mod(n - 1, {k}) = 0 THEN 'registration' ELSE '' END, '',
                   {T0_US} + n * {STEP_US}, true
            FROM generate_series(1::bigint, {members * k}) AS n"""),
        ("lot", f"""INSERT INTO lot (id, member_id, earned_us, expires_us, points, remaining,
            dated_trusted)
            SELECT 'l' || i, 'm' || lpad(i::text, 9, '0'), {T0_US},
                   {T0_US} + (400 + mod(i, 300))::bigint * 86400000000, {(k - 1) * 10},
                   {(k - 1) * 10}, true FROM generate_series(1::bigint, {members}) AS i"""),
        ("applied_event", f"""INSERT INTO applied_event (id, store, terminal, seq, epoch, kind,
            wall_us, applied_us, outcome, detail, points_in, points_out, first_seq, last_seq)
            SELECT 'a' || s, 'S' || lpad((1 + mod(s, 100))::text, 3, '0'),
                   'T0' || (1 + mod(s, 3)), s, 1, 'sale', {T0_US} + s * 2 * {STEP_US},
                   {T0_US} + s * 2 * {STEP_US},
                   'applied', '', 10, 0, s * 2 - 1, s * 2
            FROM generate_series(1::bigint, {members * k // 2}) AS s"""),
        ("terminal_seen", """INSERT INTO terminal_seen (store, terminal, online, epoch, version,
            rule_version, backlog, devices, rejected, last_seen_us)
            SELECT 'S' || lpad((1 + i / 3)::text, 3, '0'), 'T0' || (1 + mod(i, 3)),
                   mod(i, 17) <> 0, 1, '1.4.0', 7 + (mod(i, 29) = 0)::int, mod(i, 5),
                   '{"printer": "ok"}', '',
                   (extract(epoch FROM now()) * 1000000)::bigint - i * 60000000
            FROM generate_series(0::bigint, 299) AS i"""),
    ]
    bulk_load(db, steps)
    for i in range(1, min(SAMPLED, members) + 1):  # real keyed hashes for the sampled members
        sql("UPDATE member SET card_hash = %s, phone_hash = %s WHERE id = %s",
            (card_hash(KEY, card(i)), phone_hash(KEY, phone(i)), f"m{i:09d}"))
    started = time.perf_counter()
    sql("ANALYZE")
    print(f"  {'analyze':<14} {time.perf_counter() - started:6.1f} s", flush=True)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(client: TestClient, paths: list[str]) -> list[float]:
    times = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
    return times


def sign_in(app: Any, name: str) -> TestClient:
    client = TestClient(app, base_url="https://console.bench", follow_redirects=False)
    client.__enter__()
    page = client.get("/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD,
                                           "csrftoken": token})
    assert response.status_code == 303, response.text
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--entries-per-member", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100, help="per page")
    args = parser.parse_args()
    if args.entries_per_member < 2 or args.entries_per_member % 2:
        parser.error("--entries-per-member is an even number from 2")
    members, k = args.members, args.entries_per_member
    server = Postgres()
    server.start()
    try:
        url = server.dsn
        db = ConsoleDb(url)
        print(f"chain: {members:,} members, {members * k:,} entries, "
              f"{members * k // 2:,} sales and applied events, 300 terminals", flush=True)
        db.call(populate, db.db, members, k)
        db.call(accounts.add_user, "svc", "service", (), PASSWORD)
        db.call(accounts.add_user, "aud", "auditor", (), PASSWORD)
        db.close()
        app = build(url, load_rules(EXAMPLES / "rules.toml"), KEY)
        service = sign_in(app, "svc")
        n = args.requests
        sampled = min(SAMPLED, members)
        ids = [f"m{1 + (i * 7919) % sampled:09d}" for i in range(n)]
        surnames = [SURNAMES[i % len(SURNAMES)] for i in range(n)]
        full = [f"{SURNAMES[i % len(SURNAMES)]}{GIVEN[(i // 7) % len(GIVEN)]}"
                for i in range(1, n + 1)]
        pages: dict[str, list[str]] = {
            "search: a surname (prefix)": [f"/members?q={s}" for s in surnames],
            "search: a full name": [f"/members?q={name}" for name in full],
            "search: card number": [f"/members?q={card(1 + i % sampled)}" for i in range(n)],
            "search: phone": [f"/members?q={phone(1 + i % sampled)}" for i in range(n)],
            "member page": [f"/members/{m}" for m in ids],
            "statement, older page": [f"/members/{m}/statement?before="
                                      f"{(int(m[1:]) - 1) * k + k // 2 + 1}" for m in ids],
            "statement CSV": [f"/members/{m}/statement.csv" for m in ids],
            "fleet": ["/fleet"] * n,
        }
        print(f"\n{'page':<28} {'p50 ms':>8} {'p95 ms':>8}  (target p95 < 300 ms, "
              f"{n} requests each)")
        worst = 0.0
        for name, paths in pages.items():
            measure(service, paths[: max(3, n // 10)])  # warm the caches and the templates
            times = measure(service, paths)
            worst = max(worst, p(times, 0.95))
            print(f"{name:<28} {statistics.median(times):8.1f} {p(times, 0.95):8.1f}",
                  flush=True)
        auditor = sign_in(app, "aud")
        times = measure(auditor, ["/audit"] * n)
        worst = max(worst, p(times, 0.95))
        print(f"{'audit log':<28} {statistics.median(times):8.1f} {p(times, 0.95):8.1f}")
        print(f"\nworst p95 {worst:.1f} ms: {'within' if worst < 300 else 'OVER'} the 300 ms "
              "target")
        return 0 if worst < 300 else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
