"""Cashier app benchmark: swipe -> balance on the pole display, and start-up to READY=1.

    ESCPOS_CAPABILITIES_PICKLE_DIR=var/escpos-cache .venv/bin/python bench/bench_app.py

1. p50/p99 from a swipe's last key event (injected into the simulated reader's InputPort, through
   the real decoding, the till, the ledger thread and the pole's thread) until the pseudo-terminal
   pole display shows the member's balance. Target: p99 under 20 ms.
2. `posterm run --simulate` from spawn to READY=1 on $NOTIFY_SOCKET, with VmRSS/VmHWM at that
   moment, against a bare interpreter that only imports the same libraries, in the same run.
   Targets: ready within 0.3 s of the bare import time; under 60 MB resident.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(ROOT / "var" / "escpos-cache"))

from terminal.daemon.bootstrap import build  # noqa: E402
from terminal.daemon.sim.console import Console  # noqa: E402
from terminal.daemon.sim.demo import DEMO_CARD, demo_config, seed_demo  # noqa: E402
from terminal.drivers.keys import events_for_keys, events_for_text  # noqa: E402
from terminal.loyalty.store.operators import SignedIn  # noqa: E402

SWIPES = 300
LIBRARIES = "escpos.printer, serial, evdev, peewee, PIL.Image, luma.core.device, playhouse.migrate"
# The development venv holds HQ's extra, and peewee imports a PostgreSQL driver whenever one is
# installed (12 MB here). The terminal's image installs none (pyproject: the `hq` extra), so the
# daemon and the bare interpreter are both measured with the drivers hidden, as on the image.
AS_ON_THE_IMAGE = "import sys; sys.modules.update(psycopg=None, psycopg2=None)\n"


async def swipe_latency(state: Path) -> list[float]:
    now = datetime(2026, 3, 5, 18, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    terminal = await build(demo_config(state), clock=lambda: (now, True), prepare=seed_demo,
                           operator=SignedIn("bench", "cashier"))
    Console(terminal, io.StringIO())  # the same keymap wiring the simulation uses
    reader, keypad = terminal.port("msr"), terminal.port("keypad")
    pole = terminal.pole
    assert pole is not None and pole.simulator is not None
    swipe = events_for_text(f"%B{DEMO_CARD}^DEMO/MEMBER^3012101?;{DEMO_CARD}=3012101?\n")
    clear = events_for_keys(["KEY_ESC"])
    seconds = []
    try:
        for _ in range(SWIPES):
            keypad.inject(clear)
            await terminal.inputs.drain()
            terminal.till.draft.card = terminal.till.draft.member = None
            start = time.perf_counter()
            reader.inject(swipe)  # the Enter at the end is the last key event
            while "Points" not in pole.simulator.lines[1]:
                await asyncio.sleep(0)
            seconds.append(time.perf_counter() - start)
    finally:
        await terminal.close()
    return seconds


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def startup(state: Path) -> tuple[float, int, int]:
    address = str(state / "notify.sock")
    Path(address).unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(60)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"{AS_ON_THE_IMAGE}from terminal.daemon.cli import main; main()",
         "run", "--simulate", "--state-dir", str(state / "sim"), "--log-level", "WARNING"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "NOTIFY_SOCKET": address},
    )
    try:
        while b"READY=1" not in sock.recv(4096).split(b"\n"):
            pass
        ready = time.perf_counter() - start
        rss, hwm = status_kb(proc.pid, "VmRSS"), status_kb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(30)
        sock.close()
    return ready, rss, hwm


def bare_imports() -> tuple[float, int]:
    code = (f"{AS_ON_THE_IMAGE}import {LIBRARIES}\n"
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                          cwd=ROOT, env=os.environ)
    return time.perf_counter() - start, int(done.stdout)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="posterm-bench-") as tmp:
        state = Path(tmp)
        startup(state)  # warm the page cache and the simulation's first-start demo state
        seconds = asyncio.run(swipe_latency(state / "latency"))
        p50 = statistics.median(seconds) * 1000
        p99 = statistics.quantiles(seconds, n=100)[98] * 1000
        print(f"swipe -> balance on pole ({SWIPES} swipes): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
              f"(target p99 < 20 ms: {p99 / 20:.2f} of target)")
        runs = [startup(state) for _ in range(3)]
        bares = [bare_imports() for _ in range(3)]
        ready = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs) / 1024
        hwm = statistics.median(r[2] for r in runs) / 1024
        bare = statistics.median(b[0] for b in bares)
        bare_hwm = statistics.median(b[1] for b in bares) / 1024
        extra = ready - bare
        print(f"start -> READY=1: {ready:.3f} s; bare interpreter importing the same libraries: "
              f"{bare:.3f} s; difference {extra:.3f} s (target < 0.3 s: {extra / 0.3:.2f} of "
              f"target)")
        print(f"resident at READY: VmRSS {rss:.1f} MB, VmHWM {hwm:.1f} MB; bare VmHWM "
              f"{bare_hwm:.1f} MB (target < 60 MB: {hwm / 60:.2f} of target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
