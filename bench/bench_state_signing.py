"""HQ's member-state publisher signing a page of 200 states, and what it does to its event loop.

The publisher (terminal.hq.member_ops.publish.MemberStatePublisher) runs on the collector's
event loop, the one that reads the tills' events and answers them: a campaign's bonus is 500
pages for 100,000 members. Measured here, in one process, no database or broker: a page of 200
states (active, with a tier and a profile, as a bonus signs them) signed by the publisher's
``Signer``, CPU a page; and a ticker task on the same loop that wakes every millisecond,
recording how late it wakes while page after page is signed (a) on the loop, as before session
14, and (b) on the publisher's signing thread (``--way thread``, what publish_pending does now),
each page awaited in turn. The ticker's lateness is what a till's event or hold waits for the
loop meanwhile.

Run: ``PYTHONPATH=. .venv/bin/python bench/bench_state_signing.py [--pages N]
[--way loop|thread|both]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from terminal.core.executor import DeviceExecutor  # noqa: E402
from terminal.hq.member_ops.publish import Signer  # noqa: E402
from terminal.protocol import bundle  # noqa: E402
from terminal.protocol.member_state import MemberState, Profile  # noqa: E402

PAGE = 200


def page(number: int, issued: datetime) -> list[MemberState]:
    return [MemberState(f"{number * PAGE + n:064x}", number * PAGE + n + 1, issued, "active",
                        "care campaign bonus", card_last4=f"{n:04d}", tier="silver",
                        profile=Profile("Ann Example", "1980-02-29", "c" * 64, "1234"))
            for n in range(PAGE)]


async def measure(signer: Signer, pages: list[list[MemberState]], way: str
                  ) -> tuple[list[float], list[float]]:
    """Each page's wall time signed ``way``, and the ticker's lateness (s) meanwhile."""
    late: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            due = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            late.append(max(0.0, time.perf_counter() - due))

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    late.clear()
    executor = DeviceExecutor("hq-state-signing")
    walls = []
    try:
        for states in pages:
            wall = time.perf_counter()
            if way == "loop":
                signer.sign_page(states)
            else:
                await executor.run(signer.sign_page, states)
            walls.append(time.perf_counter() - wall)
            await asyncio.sleep(0)  # the publisher awaits its write of the page here
    finally:
        stop.set()
        await ticking
        executor.shutdown()
    return walls, late


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--way", choices=("loop", "thread", "both"), default="both")
    args = parser.parse_args()
    print(f"bench_state_signing (this machine): {args.pages} pages of {PAGE}, load "
          f"{os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    root, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = datetime.now(UTC).replace(microsecond=0)
    signer = Signer(key, bundle.delegate(root, key.public_key(), now - timedelta(days=1),
                                         now + timedelta(days=365)).to_wire())
    pages = [page(number, now) for number in range(args.pages)]
    cpu = time.process_time()
    for states in pages:
        signer.sign_page(states)
    print(f"signing alone, CPU a page: {(time.process_time() - cpu) / args.pages * 1000:.2f} ms")
    for way in ("loop", "thread") if args.way == "both" else (args.way,):
        walls, late = asyncio.run(measure(signer, pages, way))
        late_ms = sorted(value * 1000 for value in late)
        print(f"signed on the {way}: a page p50 {statistics.median(walls) * 1000:.2f} ms, "
              f"max {max(walls) * 1000:.2f} ms; the loop's 1 ms ticker late p50 "
              f"{statistics.median(late_ms):.2f} ms, p99 "
              f"{late_ms[int(len(late_ms) * 0.99)]:.2f} ms, max {late_ms[-1]:.2f} ms "
              f"({len(late_ms)} ticks)")
    print(f"load {os.getloadavg()[0]:.1f}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
