"""A till's catch-up of member states, against this machine's own limit (this machine, not a Pi).

A till that was away while HQ changed ``--states`` cards' states (a campaign's bonus to a whole
chain) takes them by its catch-up, a page of 200 at a time (terminal.sync.member_states): each
page's states are verified (Ed25519 against the till's root keys, the delegation checked) and
applied, with the page's bookmark, in one transaction of the till's own ledger (a real SQLite
file, WAL, synchronous=FULL, the pragmas the till checks at start-up). Measured here, on the
ledger's own thread as the daemon runs it, without the broker and HQ's answers (the till asks for
a page as the last one's cost allows: terminal.sync.member_states.CatchUp): ``receive_page``
page by page, wall time and this process's CPU time a page; the verifications alone (no
database) a page, the delegation remembered and verified for every state as before; and the
limit, the same number of bare ``sqlite3`` transactions on a file of their own on the same disk
with the same pragmas, each writing a page's 200 rows (card hash, state, reason, version) and
the bookmark. The till holds none of the cards' members (a till holds its store's members, a
small share of a chain's), so a state is its card's row and no member's profile.

Run: ``PYTHONPATH=. .venv/bin/python bench/bench_state_catch_up.py [--states N]`` (default
100,000: 500 pages; the signing of the states beforehand is not measured).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from bench.bench_ledger import KEY, SHARED  # noqa: E402
from terminal.loyalty.rules import load_rules  # noqa: E402
from terminal.loyalty.store import Identity, LedgerStore  # noqa: E402
from terminal.loyalty.store.database import PRAGMAS  # noqa: E402
from terminal.protocol import bundle  # noqa: E402
from terminal.protocol.member_state import MemberState, Profile, signed  # noqa: E402
from terminal.sync.member_states import PACE, held_through, receive_page  # noqa: E402

PAGE = 200  # what HQ answers a catch-up request with at most (publish.CATCH_UP_PAGE)


def pages(states: int) -> tuple[list[list[bytes]], bundle.TrustStore]:
    """``states`` signed states of distinct cards, versions 1.., in pages of :data:`PAGE`."""
    root, signing = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    delegation = bundle.delegate(root, signing.public_key(), now - timedelta(days=1),
                                 now + timedelta(days=365)).to_wire()
    wires = [signed(MemberState(f"{version:064x}", version, now, "active",
                                "care campaign bonus", card_last4=f"{version % 10000:04d}",
                                tier="member", profile=Profile()), signing, delegation)
             for version in range(1, states + 1)]
    return ([wires[start:start + PAGE] for start in range(0, states, PAGE)],
            bundle.TrustStore.of([root.public_key()]))


def catch_up(path: Path, batches: list[list[bytes]], trust: bundle.TrustStore
             ) -> tuple[list[float], list[float]]:
    """Each page through ``receive_page`` on a real ledger: wall and CPU seconds a page."""
    rules = load_rules(SHARED / "examples" / "rules.toml")
    store = LedgerStore.open(path, rules, KEY, Identity("S001", "T01"))
    walls, cpus = [], []
    try:
        since = 0
        for number, wires in enumerate(batches, 1):
            wall, cpu = time.perf_counter(), time.process_time()
            applied, refused = receive_page(store, wires, since, number * PAGE, trust, True)
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
            assert len(applied) == len(wires) and not refused
            since = number * PAGE
        assert held_through() == since
    finally:
        store.close()
    return walls, cpus


def verify_only(batches: list[list[bytes]], trust: bundle.TrustStore, *,
                remembered: bool = True) -> list[float]:
    """The verifications alone (what ``receive_page`` does before its transaction): CPU a page.
    ``remembered=False``: the delegation verified again for every state, as before session 14
    (its remembered verification forgotten before each)."""
    from terminal.protocol.member_state import verify_member_state
    forget = bundle._verified_delegation.cache_clear
    cpus = []
    for wires in batches:
        cpu = time.process_time()
        for wire in wires:
            if not remembered:
                forget()
            verify_member_state(wire, trust)
        cpus.append(time.process_time() - cpu)
    return cpus


def bare(path: Path, batches: list[list[bytes]]) -> list[float]:
    """The limit: a bare transaction a page, the page's rows and the bookmark, same pragmas."""
    connection = sqlite3.connect(path, isolation_level=None)
    for name, value in PRAGMAS.items():
        connection.execute(f"PRAGMA {name} = {value}")
    connection.execute("CREATE TABLE card_state (card_hash TEXT PRIMARY KEY, state TEXT, "
                       "reason TEXT, replaced_by TEXT, version INTEGER)")
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    walls = []
    version = 0
    for wires in batches:
        rows = [(f"{version + n:064x}", "active", "care campaign bonus", None, version + n)
                for n in range(1, len(wires) + 1)]
        version += len(wires)
        wall = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany("INSERT OR REPLACE INTO card_state VALUES (?, ?, ?, ?, ?)", rows)
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('member_states_through', ?)",
                           (str(version),))
        connection.execute("COMMIT")
        walls.append(time.perf_counter() - wall)
    connection.close()
    return walls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--states", type=int, default=100_000)
    args = parser.parse_args()
    print(f"bench_state_catch_up (this machine, not a Pi): {args.states:,} states, load "
          f"{os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
    batches, trust = pages(args.states)
    (ROOT / "var").mkdir(exist_ok=True)  # a real disk (ignored by git), not a tmpfs /tmp
    with tempfile.TemporaryDirectory(prefix="bench-catch-up-", dir=ROOT / "var") as tmp:
        directory = Path(tmp)
        limit = bare(directory / "bare.db", batches)
        walls, cpus = catch_up(directory / "till.db", batches, trust)
        verifying = verify_only(batches, trust)
        every_time = verify_only(batches, trust, remembered=False)
    count = len(batches)
    ms = 1000

    def line(name: str, values: list[float]) -> str:
        return (f"{name}: {sum(values):.2f} s in all, a page mean "
                f"{statistics.fmean(values) * ms:.2f} ms, p50 {statistics.median(values) * ms:.2f}"
                f" ms, max {max(values) * ms:.2f} ms")

    print(f"{count:,} pages of up to {PAGE}")
    print(line("the till's receive_page, wall", walls))
    print(line("the till's receive_page, CPU", cpus))
    print(line("  of which the 200 verifications, CPU", verifying))
    print(line("  the same, the delegation verified for every state (before), CPU", every_time))
    print(line("bare sqlite3 transaction a page, wall (the limit)", limit))
    page, bare_page = statistics.fmean(walls), statistics.fmean(limit)
    print(f"ratio (bare / the till's, wall a page): {bare_page / page:.3f}; (bare + the "
          f"verifications) / the till's: {(bare_page + statistics.fmean(verifying)) / page:.3f}")
    paced = sum(max(PACE, 2 * wall) for wall in walls)
    fixed = sum(wall + 0.5 for wall in walls)
    print(f"the till's catch-up of {args.states:,} states, HQ's round trips left out: its own "
          f"work {sum(walls):.1f} s; a page asked every max({PACE} s, twice a page's cost): "
          f"{paced:.0f} s; before, half a second after each page's cost: {fixed:.0f} s")
    print(f"load {os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
